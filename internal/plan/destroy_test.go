package plan

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
)

// TestPlanDestroy: an app environment whose app.json asks to be destroyed
// gets the destroy step only (no deployment, git build or watch of it),
// after the front door's load, and is left out of the front door's
// configuration; the others are planned as before.
func TestPlanDestroy(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	shop, blog := state.AppEnv{App: "shop", Env: "prod"}, state.AppEnv{App: "blog", Env: "prod"}
	for _, tc := range []struct {
		name  string
		app   state.App
		steps string // shop's steps, in order
	}{
		{name: "live, with a domain", app: state.App{CurrentVersion: "aaaaaaaaaaaa", Domains: []string{"shop.example.com"}}, steps: "destroy"},
		{name: "a deployment pending", app: state.App{CurrentVersion: "aaaaaaaaaaaa",
			Deployment: &state.Deployment{Version: "bbbbbbbbbbbb", State: state.StatePreparing}}, steps: "destroy"},
		{name: "a watch and a git push", app: state.App{CurrentVersion: "aaaaaaaaaaaa",
			Watch: &state.Watch{Version: "aaaaaaaaaaaa", Until: now.Add(time.Hour)},
			Git:   &state.Git{Requested: &state.GitCommit{Commit: strings.Repeat("c", 40)}}}, steps: "destroy"},
		{name: "backing off", app: state.App{Backoff: &state.Backoff{Step: Destroy, Failures: 1, NextTry: now.Add(time.Minute), LastError: "userdel: busy"}}, steps: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := state.Layout{Root: t.TempDir()}
			if err := os.MkdirAll(routes.Dir(l), 0o755); err != nil {
				t.Fatal(err)
			}
			a := tc.app
			a.Destroy = &state.Destroy{RequestDate: now}
			for ae, app := range map[state.AppEnv]state.App{shop: a, blog: {CurrentVersion: "cccccccccccc", Domains: []string{"blog.example.com"}}} {
				if _, err := state.UpdateApp(l.AppJSON(ae), func(x *state.App) error { *x = app; return nil }); err != nil {
					t.Fatal(err)
				}
			}
			p, err := Make(l, now, false)
			if err != nil {
				t.Fatal(err)
			}
			var mine []string
			routeAt, destroyAt := -1, -1
			for i, s := range p.Steps {
				switch {
				case s.Name == Route:
					routeAt = i
				case s.AppEnv == shop:
					mine = append(mine, s.Name)
					if s.Name == Destroy {
						destroyAt = i
					}
				}
			}
			if got := strings.Join(mine, ","); got != tc.steps {
				t.Errorf("shop's steps %q, want %q (all: %v)", got, tc.steps, p.Steps)
			}
			if routeAt < 0 || (destroyAt >= 0 && destroyAt < routeAt) {
				t.Errorf("the front door's load at %d, the destroy at %d: the routes must go first", routeAt, destroyAt)
			}
			in, err := routes.Read(l)
			if err != nil {
				t.Fatal(err)
			}
			if cfg, _ := routes.Render(in); strings.Contains(string(cfg.HAProxy), "shop.example.com") || !strings.Contains(string(cfg.HAProxy), "blog.example.com") {
				t.Errorf("what the Route step loads (routes.Read):\n%s", cfg)
			}
		})
	}
}
