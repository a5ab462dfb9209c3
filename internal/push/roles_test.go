package push

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/placement"
)

func callLines(t *testing.T, root, cmd string) []string {
	b, _ := os.ReadFile(filepath.Join(root, "calls.log"))
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, cmd+" ") {
			out = append(out, l)
		}
	}
	return out
}

// TestPushRoles: each server is told its role and the roles the
// environment has; ps:scale restarts only the servers that run the type.
func TestPushRoles(t *testing.T) {
	e := newSSHEnv(t)
	roots := map[string]string{}
	c, _, errb := e.client(t, roots, "web2", "web1")
	c.Targets[0].Role = "worker"
	var err error
	if c.Roles, err = placement.Parse("jecloud.toml", map[string][]string{"worker": {"worker"}, "cron": {"clock"}}, nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Push(ctx, appDir(t), Options{}); err != nil {
		t.Fatalf("push: %v\n%s", err, errb)
	}
	for host, want := range map[string]string{"web2": "--role worker --roles web,worker", "web1": "--role web --roles web,worker"} {
		d := callLines(t, roots[host], "deploy")
		if len(d) != 1 || !strings.HasSuffix(d[0], want) {
			t.Errorf("%s: deploy calls %q, want one ending %q", host, d, want)
		}
	}
	for _, want := range []string{
		"worker servers run worker; web servers run the other process types",
		"prod has no cron server: clock run on the web servers",
		"on web2 (worker)",
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("push output lacks %q:\n%s", want, errb)
		}
	}

	if err := c.Scale(ctx, []string{"worker=2"}, false); err != nil {
		t.Fatalf("scale: %v\n%s", err, errb)
	}
	if got := callLines(t, roots["web2"], "ps:scale"); len(got) != 1 || !strings.HasSuffix(got[0], "worker=2 --wait") {
		t.Errorf("worker server: %q, want a restart (--wait)", got)
	}
	if got := callLines(t, roots["web1"], "ps:scale"); len(got) != 1 || !strings.HasSuffix(got[0], "worker=2 --no-restart") {
		t.Errorf("web server: %q, want the count recorded only (--no-restart)", got)
	}
	if !strings.Contains(errb.String(), "worker=2: applied on web2 (worker)") {
		t.Errorf("scale output:\n%s", errb)
	}
	// clock has no server of its role: it runs (and is scaled) on the web server.
	if err := c.Scale(ctx, []string{"clock=1"}, false); err != nil {
		t.Fatal(err)
	}
	if got := callLines(t, roots["web1"], "ps:scale"); len(got) != 2 || !strings.HasSuffix(got[1], "clock=1 --wait") {
		t.Errorf("web server, clock: %q", got)
	}

	// A push to the web server alone (--host) still knows the environment
	// has worker servers: the web server does not take the workers.
	c.Targets, c.EnvRoles = c.Targets[1:], []string{"web", "worker"}
	if err := c.Push(ctx, appDir(t), Options{Force: true}); err != nil {
		t.Fatal(err)
	}
	if d := callLines(t, roots["web1"], "deploy"); len(d) != 2 || !strings.HasSuffix(d[1], "--role web --roles web,worker") {
		t.Errorf("web1 alone: deploy calls %q", d)
	}

	// Without [roles] and without roles on the hosts, nothing changes: no flags.
	roots2 := map[string]string{}
	c2, _, errb2 := e.client(t, roots2, "web3")
	if err := c2.Push(ctx, appDir(t), Options{}); err != nil {
		t.Fatalf("push: %v\n%s", err, errb2)
	}
	if d := callLines(t, roots2["web3"], "deploy"); len(d) != 1 || strings.Contains(d[0], "--role") {
		t.Errorf("deploy without roles: %q", d)
	}
}
