package rollforward

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/hook"
	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
)

// TestLBDrain (issue #22 §2): with the front door installed, a switch
// makes the app environment's health path say "draining" first and waits
// proxy.lb_wait; it says "ok" again once the new release is started, and
// the deployment is reported live after a second wait. A marker that a
// stopped run left behind is removed by the next run.
func TestLBDrain(t *testing.T) {
	lb := newLab(t)
	l := lb.l
	if err := os.MkdirAll(routes.Dir(l), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(l.ServerJSON(), []byte(`{"proxy": {"lb_wait": "300ms"}}`), 0o644)
	lb.e.Route = func(ctx context.Context) ([]string, error) {
		in, err := routes.Read(l)
		if err != nil {
			return nil, err
		}
		cfg, notes := routes.Render(in)
		os.WriteFile(routes.HAProxyFile(l), cfg.HAProxy, 0o644)
		return notes, os.WriteFile(routes.AppliedFile(l), cfg.Caddy, 0o644)
	}
	var drainingAt []string
	lb.e.Hooks = func() ([]hook.Hook, error) {
		return []hook.Hook{hookFunc(func(req hook.Request) {
			if routes.Draining(l, web) {
				drainingAt = append(drainingAt, req.Phase+":"+req.Version)
			}
			if req.Phase == hook.Deployed {
				// The node hook routes the web instances it started.
				routes.WriteUpstreams(l, web, routes.Upstreams{Web: []string{"127.0.0.1:10001"}})
			}
		})}, nil
	}
	v1 := lb.push(web, map[string]string{"x": "1"})
	lb.request(web, v1)
	lb.run()
	if a := lb.app(web); a.CurrentVersion != v1 || len(drainingAt) != 0 {
		t.Fatalf("first deploy: %+v, draining during %v (nothing to drain yet)\n%s", a, drainingAt, lb.log)
	}
	v2 := lb.push(web, map[string]string{"x": "2"})
	lb.request(web, v2)
	lb.run()
	if a := lb.app(web); a.CurrentVersion != v2 {
		t.Fatalf("second deploy: %+v\n%s", a, lb.log)
	}
	if strings.Join(drainingAt, " ") != "deployed:"+v2 {
		t.Errorf("draining during %v, want during v2's deployed phase only", drainingAt)
	}
	if routes.Draining(l, web) {
		t.Errorf("still draining after the deploy")
	}
	for _, want := range []string{`health path says "draining": waiting 300ms`, `health path says "ok": waiting 300ms`} {
		if !strings.Contains(lb.log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, lb.log)
		}
	}

	// Left by a run that stopped: removed, this app's and a gone one's.
	routes.SetDraining(l, web, true)
	routes.SetDraining(l, state.AppEnv{App: "gone", Env: "prod"}, true)
	lb.run()
	if ents, _ := os.ReadDir(routes.DrainDir(l)); len(ents) != 0 {
		t.Errorf("markers left in %s: %v\n%s", filepath.Base(routes.DrainDir(l)), ents, lb.log)
	}

	// A value that is no duration stops the switch with the fix.
	os.WriteFile(l.ServerJSON(), []byte(`{"proxy": {"lb_wait": "6"}}`), 0o644)
	v3 := lb.push(web, map[string]string{"x": "3"})
	lb.request(web, v3)
	lb.run()
	a := lb.app(web)
	if a.CurrentVersion != v2 || a.Backoff == nil || !strings.Contains(a.Backoff.LastError, `proxy.lb_wait "6": give a duration`) {
		t.Errorf("lb_wait \"6\": %+v", a)
	}
}
