package fleet

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/backup/s3test"
	"github.com/jecloud/jecloud/internal/globalstate"
	"github.com/jecloud/jecloud/internal/state"
)

// TestSyncRouting: a following server adds the document's domains that
// its app.json lacks (a server that missed `jepush domains:add`, or a new
// one), keeps its own, leaves out a host another app environment here
// holds (logged), and takes maintenance from the document when it sets it.
func TestSyncRouting(t *testing.T) {
	s3 := s3test.Start(t, "127.0.0.1")
	ctx := t.Context()
	st := &globalstate.Store{S3: s3.Client(t), Bucket: s3.Bucket}
	const v1 = "0123456789ab"
	ae := state.AppEnv{App: "shop", Env: "prod"}
	other := state.AppEnv{App: "blog", Env: "prod"}
	on := true
	if _, err := st.Update(ctx, ae.App, ae.Env, func(e *globalstate.Env) error {
		e.Servers = []globalstate.Server{{Name: "shop-prod-1", Host: "10.0.0.1"}}
		e.Request(v1, "test", time.Now().UTC())
		e.Routing = &globalstate.Routing{Domains: []string{"shop.example.com", "blog.example.com"}, Maintenance: &on}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	l := state.Layout{Root: root}
	os.MkdirAll(filepath.Dir(l.ServerJSON()), 0o755)
	if err := os.WriteFile(CredentialsFile(root), []byte(s3.Env()), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Follow(root, Settings{Bucket: s3.Bucket, Region: "us-east-1", Endpoint: s3.Endpoint, Server: "shop-prod-1"}, "shop/prod"); err != nil {
		t.Fatal(err)
	}
	state.UpdateApp(l.AppJSON(ae), func(a *state.App) error { a.CurrentVersion = v1; a.Domains = []string{"own.example.com"}; return nil })
	state.UpdateApp(l.AppJSON(other), func(a *state.App) error { a.Domains = []string{"blog.example.com"}; return nil })
	var log strings.Builder
	sync := func() *state.App {
		t.Helper()
		fo, err := Open(ctx, root, &log)
		if err != nil {
			t.Fatal(err)
		}
		if err := fo.Sync(ctx, allHere{}); err != nil {
			t.Fatal(err)
		}
		var a state.App
		if err := state.Read(l.AppJSON(ae), &a); err != nil {
			t.Fatal(err)
		}
		return &a
	}
	a := sync()
	if !slices.Equal(a.Domains, []string{"own.example.com", "shop.example.com"}) || !a.Maintenance {
		t.Errorf("after sync: domains %v, maintenance %v", a.Domains, a.Maintenance)
	}
	if !strings.Contains(log.String(), `shop/prod: the global state routes blog.example.com here, but: host name "blog.example.com" is held by blog/prod`) {
		t.Errorf("log:\n%s", log.String())
	}
	// Maintenance off in the document; no routing at all leaves app.json alone.
	off := false
	st.Update(ctx, ae.App, ae.Env, func(e *globalstate.Env) error { e.Routing.Maintenance = &off; return nil })
	if a := sync(); a.Maintenance {
		t.Error("maintenance still on")
	}
	st.Update(ctx, ae.App, ae.Env, func(e *globalstate.Env) error { e.Routing = nil; return nil })
	state.UpdateApp(l.AppJSON(ae), func(a *state.App) error { a.Maintenance = true; return nil })
	if a := sync(); !a.Maintenance || len(a.Domains) != 2 {
		t.Errorf("without routing in the document: %+v", a)
	}
}
