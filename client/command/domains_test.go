package command

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/jecloud/jecloud/internal/state"
)

// TestDomainsRealAgent: jepush's front-door verbs against the real jeagent
// (local target): host names checked before anything runs (exit 2), a host
// another app environment holds refused naming it, and app.json changed.
func TestDomainsRealAgent(t *testing.T) {
	agent := buildAgent(t)
	root := t.TempDir()
	if out, err := exec.Command(agent, "--root", root, "init", "--no-systemd").CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	l := state.Layout{Root: root}
	if err := state.Write(l.AppJSON(state.AppEnv{App: "blog", Env: "prod"}), state.App{Domains: []string{"blog.example.com"}}); err != nil {
		t.Fatal(err)
	}
	dir := app(t) // package.json names it shop
	ctx := context.Background()
	steps := []struct {
		args []string
		code int
		want string // in stdout and stderr
	}{
		{[]string{"domains:add", "prod", "WWW.example.com"}, ExitUsage, `invalid host name "WWW.example.com": use lowercase (www.example.com)`},
		{[]string{"domains:add", "prod", "*.example.com"}, ExitUsage, "wildcards are not routed"},
		{[]string{"domains:add", "prod"}, ExitUsage, "domains:add expects ENV HOST..."},
		{[]string{"domains:remove", "prod", "a.example.com", "b.example.com"}, ExitUsage, "domains:remove expects ENV HOST"},
		{[]string{"domains:add", "prod", "www.example.com", "example.com"}, 0, "shop/prod: added www.example.com, example.com"},
		{[]string{"domains:add", "prod", "blog.example.com"}, ExitFailed, `host name "blog.example.com" is held by blog/prod on this server`},
		{[]string{"domains", "prod"}, 0, "www.example.com"},
		{[]string{"domains", "prod", "--json"}, 0, `"certificate": null`},
		{[]string{"domains:remove", "prod", "example.com"}, 0, "shop/prod: removed example.com"},
		{[]string{"maintenance:on", "prod"}, 0, "shop/prod: maintenance on"},
		{[]string{"logs", "prod", "--json"}, ExitUsage, "--json goes with --proxy"},
	}
	for _, s := range steps {
		code, out, errb := jepush(ctx, append(s.args, "--dir", dir, "--local", "--root", root, "--agent", agent)...)
		if code != s.code || !strings.Contains(out+errb, s.want) {
			t.Errorf("jepush %s: exit %d\nstdout: %s\nstderr: %s\nwant exit %d and %q", strings.Join(s.args, " "), code, out, errb, s.code, s.want)
		}
	}
	// The agent started roll-forwards to apply the changes: let them end
	// before the temp dir goes.
	fl := flock.New(l.PIDFile())
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok, _ := fl.TryLock(); ok {
			fl.Unlock()
			break
		}
	}
	var a state.App
	if err := state.Read(l.AppJSON(state.AppEnv{App: "shop", Env: "prod"}), &a); err != nil {
		t.Fatal(err)
	}
	if strings.Join(a.Domains, " ") != "www.example.com" || !a.Maintenance {
		t.Errorf("app.json: domains %v, maintenance %v", a.Domains, a.Maintenance)
	}
}
