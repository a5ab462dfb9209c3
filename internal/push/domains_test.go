package push

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/backup/s3test"
	"github.com/jecloud/jecloud/internal/globalstate"
	"github.com/jecloud/jecloud/internal/remote"
	"github.com/jecloud/jecloud/internal/remote/sshdtest"
)

// TestDomainsAndMaintenance: the verbs reach every server's agent in turn,
// stop at the first refusal naming the servers not done, and on EC2 keep
// the routing in the global state (not when a server refused the hosts).
func TestDomainsAndMaintenance(t *testing.T) {
	s3 := s3test.Start(t, "127.0.0.1")
	ctx := context.Background()
	st := &globalstate.Store{S3: s3.Client(t), Bucket: s3.Bucket}
	r1, r2 := t.TempDir(), t.TempDir()
	agent := fakeAgent(t)
	out, errb := &syncBuffer{}, &syncBuffer{}
	c := &Client{App: "shop", Env: "prod", Stdout: out, Stderr: errb, StatusCmd: "jepush status prod",
		Targets: []remote.Target{{Local: true, Root: r1, Agent: agent}, {Local: true, Root: r2, Agent: agent}},
		Global:  &Global{Store: st}}
	routing := func() *globalstate.Routing {
		t.Helper()
		e, _, err := st.Get(ctx, "shop", "prod")
		if err != nil {
			t.Fatal(err)
		}
		return e.Routing
	}
	calls := func(root string) string { return string(must(os.ReadFile(filepath.Join(root, "calls.log")))) }

	if err := c.AddDomains(ctx, []string{"www.example.com", "example.com"}); err != nil {
		t.Fatalf("AddDomains: %v\n%s", err, errb)
	}
	for _, root := range []string{r1, r2} {
		if !strings.Contains(calls(root), "domains:add shop prod www.example.com example.com") {
			t.Errorf("%s: calls %s", root, calls(root))
		}
	}
	if r := routing(); r == nil || !slices.Equal(r.Domains, []string{"www.example.com", "example.com"}) || r.Maintenance != nil {
		t.Fatalf("routing %+v", r)
	}
	// A host the first server refuses: the error names it and the
	// servers not done; the global state does not take it.
	sshdtest.WriteFile(t, filepath.Join(r1, "taken"), `host name "api.example.com" is held by blog/prod on this server`, 0o644)
	err := c.AddDomains(ctx, []string{"api.example.com"})
	if err == nil || !strings.Contains(err.Error(), "is held by blog/prod") || !strings.Contains(err.Error(), "not done on: local") {
		t.Errorf("refused AddDomains: %v", err)
	}
	if r := routing(); slices.Contains(r.Domains, "api.example.com") {
		t.Errorf("the global state took a refused host: %+v", r)
	}
	if err := c.RemoveDomain(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Maintenance(ctx, true); err != nil {
		t.Fatal(err)
	}
	if r := routing(); !slices.Equal(r.Domains, []string{"www.example.com"}) || r.Maintenance == nil || !*r.Maintenance {
		t.Errorf("routing after remove and maintenance:on: %+v", r)
	}
	for _, want := range []string{"domains:remove shop prod example.com", "maintenance:on shop prod"} {
		if !strings.Contains(calls(r2), want) {
			t.Errorf("calls lack %q:\n%s", want, calls(r2))
		}
	}
	errb.b.Reset()
	if err := c.ShowDomains(ctx, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "local: domains recorded: shop prod") || !strings.Contains(errb.String(), "domains www.example.com (every server of prod adds them)") {
		t.Errorf("ShowDomains:\n%s\n%s", out, errb)
	}
}

// TestPushCarriesRouting: a push over SSH to an EC2 environment gives each
// server the routing the global state keeps (a server made after the
// domains were added gets them), and ends by printing where it is served.
func TestPushCarriesRouting(t *testing.T) {
	s3 := s3test.Start(t, "127.0.0.1")
	ctx := context.Background()
	st := &globalstate.Store{S3: s3.Client(t), Bucket: s3.Bucket}
	on := true
	if _, err := st.Update(ctx, "shop", "prod", func(e *globalstate.Env) error {
		e.Routing = &globalstate.Routing{Domains: []string{"www.example.com"}, Maintenance: &on}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	out, errb := &syncBuffer{}, &syncBuffer{}
	c := &Client{App: "shop", Env: "prod", Stdout: out, Stderr: errb, StatusCmd: "jepush status prod", State: st,
		Targets: []remote.Target{{Local: true, Root: root, Agent: fakeAgent(t)}}}
	if err := c.Push(ctx, appDir(t), Options{}); err != nil {
		t.Fatalf("push: %v\n%s", err, errb)
	}
	calls := string(must(os.ReadFile(filepath.Join(root, "calls.log"))))
	for _, want := range []string{"domains:add shop prod www.example.com", "maintenance:on shop prod"} {
		if !strings.Contains(calls, want) {
			t.Errorf("calls lack %q:\n%s", want, calls)
		}
	}
	if !strings.HasSuffix(out.String(), "shop prod: served at https://www.example.com/\n") {
		t.Errorf("stdout:\n%s", out)
	}
	// With SSH targets, the bare address of each web server first.
	c.Targets = []remote.Target{{Dest: "jecloud@192.0.2.7"}, {Dest: "2001:db8::1"}, {Dest: "192.0.2.9", Role: "worker"}}
	out.b.Reset()
	c.sayServed(ctx)
	if want := "shop prod: served at http://192.0.2.7/\nshop prod: served at http://[2001:db8::1]/\nshop prod: served at https://www.example.com/\n"; out.String() != want {
		t.Errorf("served:\n%s\nwant:\n%s", out, want)
	}
}
