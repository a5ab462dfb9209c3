package rollforward

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/hook"
	"github.com/jecloud/jecloud/internal/plan"
	"github.com/jecloud/jecloud/internal/state"
)

// named is a hook that records its destroy phases in a shared list.
type named struct {
	name  string
	calls *[]string
}

func (n named) Name() string { return n.name }
func (n named) Run(_ context.Context, req hook.Request, _ io.Writer) (hook.Response, error) {
	if req.Phase == hook.Destroy {
		*n.calls = append(*n.calls, fmt.Sprintf("%s data=%v", n.name, req.Data))
	}
	return hook.Response{}, nil
}

// deployedLab is a lab with web/prod live and the files a deployment and
// its services leave in its directory.
func deployedLab(t *testing.T) (*lab, *[]string) {
	lb := newLab(t)
	var calls []string
	lb.e.Hooks = func() ([]hook.Hook, error) {
		return []hook.Hook{named{"first", &calls}, named{"second", &calls}, lb.rec}, nil
	}
	id := lb.push(web, map[string]string{"Procfile": "web: true\n"})
	lb.request(web, id)
	lb.run()
	if lb.live(web) != id {
		t.Fatalf("not live: %s", lb.log)
	}
	dir := lb.l.AppDir(web)
	for p, c := range map[string]string{"config.env": "A=1\n", "services.env": "REDIS_URL=x\n", "data/upload": "u", "redis/dump.rdb": "r", "home/.x": "h"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o750)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return lb, &calls
}

func (lb *lab) askDestroy(data bool) {
	lb.t.Helper()
	if _, err := state.UpdateApp(lb.l.AppJSON(web), func(a *state.App) error {
		a.Destroy = &state.Destroy{RequestDate: lb.now, Data: data}
		return nil
	}); err != nil {
		lb.t.Fatal(err)
	}
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func TestDestroy(t *testing.T) {
	for _, tc := range []struct {
		name string
		data bool
		kept []string // left in the app environment's directory
	}{
		{name: "data stays", data: false, kept: []string{"data/upload", "redis/dump.rdb"}},
		{name: "with --data", data: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb, calls := deployedLab(t)
			*calls = nil
			lb.askDestroy(tc.data)
			steps, _, err := lb.e.Plan()
			if err != nil || len(steps) != 1 || steps[0].Name != plan.Destroy {
				t.Fatalf("plan after the request: %v %v", steps, err)
			}
			lb.run()
			want := []string{fmt.Sprintf("second data=%v", tc.data), fmt.Sprintf("first data=%v", tc.data)}
			if !slices.Equal(*calls, want) {
				t.Errorf("destroy phases: %q, want %q (reverse order)", *calls, want)
			}
			dir := lb.l.AppDir(web)
			for _, gone := range []string{"app.json", "source", "config.env", "services.env", "home"} {
				if exists(filepath.Join(dir, gone)) {
					t.Errorf("%s is left", gone)
				}
			}
			for _, k := range tc.kept {
				if !exists(filepath.Join(dir, k)) {
					t.Errorf("%s is gone; data must stay without --data", k)
				}
			}
			if tc.data && exists(dir) {
				entries, _ := os.ReadDir(dir)
				t.Errorf("%s is left with --data: %v", dir, entries)
			}
			if steps, _, _ := lb.e.Plan(); len(steps) != 0 {
				t.Errorf("steps after the destroy: %v", steps)
			}
			if !strings.Contains(lb.log.String(), "destroyed") {
				t.Errorf("log:\n%s", lb.log)
			}
		})
	}
}

// TestDestroyPendingDeployment: a deployment pending when the destroy is
// asked for is never carried out: the environment is only destroyed.
func TestDestroyPendingDeployment(t *testing.T) {
	lb, _ := deployedLab(t)
	id := lb.push(web, map[string]string{"Procfile": "web: false\n"})
	lb.request(web, id)
	lb.askDestroy(false)
	steps, _, err := lb.e.Plan()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range steps {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, []string{plan.Destroy}) {
		t.Fatalf("steps: %q, want only destroy", names)
	}
	lb.run()
	if exists(lb.l.AppJSON(web)) {
		t.Errorf("app.json left:\n%s", lb.log)
	}
	for _, c := range lb.rec.calls {
		if strings.HasSuffix(c, ":"+id) {
			t.Errorf("the pending deployment ran a hook: %s", c)
		}
	}
}

// TestDestroyCrash: a run killed at each point of the destroy step leaves
// the environment asking to be destroyed (so not live, not routed), and
// the next run finishes the job.
func TestDestroyCrash(t *testing.T) {
	for _, point := range []string{"destroy:hooks", "destroy:hooked", "destroy:removed"} {
		t.Run(point, func(t *testing.T) {
			lb, calls := deployedLab(t)
			lb.askDestroy(true)
			lb.e.Fault = func(p string) {
				if p == point {
					panic("power cut at " + p)
				}
			}
			func() {
				defer func() {
					if r := recover(); r == nil {
						t.Fatalf("no crash at %s", point)
					}
				}()
				lb.e.Run(context.Background())
			}()
			a := lb.app(web)
			if a.Destroy == nil {
				t.Fatalf("after a crash at %s, app.json no longer asks to be destroyed", point)
			}
			steps, _, _ := lb.e.Plan()
			if len(steps) == 0 || steps[0].Name != plan.Destroy {
				t.Fatalf("after a crash at %s, plan: %v", point, steps)
			}
			lb.e.Fault = nil
			*calls = nil
			lb.run()
			if exists(lb.l.AppDir(web)) {
				t.Errorf("after the re-run, %s is left", lb.l.AppDir(web))
			}
			if len(*calls) != 2 {
				t.Errorf("the re-run's destroy phases: %q", *calls)
			}
		})
	}
}

// TestDestroyHookFails: a failing destroy phase backs off; app.json
// still asks to be destroyed, and the retry finishes it.
func TestDestroyHookFails(t *testing.T) {
	lb, _ := deployedLab(t)
	lb.rec.fail[hook.Destroy] = "userdel: user is in use"
	lb.askDestroy(false)
	lb.run()
	a := lb.app(web)
	if a.Destroy == nil || a.Backoff == nil || a.Backoff.Step != plan.Destroy || !strings.Contains(a.Backoff.LastError, "user is in use") {
		t.Fatalf("after a failing destroy hook: destroy %+v backoff %+v", a.Destroy, a.Backoff)
	}
	if !exists(lb.l.Versions(web)) {
		t.Error("the releases went although a hook failed")
	}
	delete(lb.rec.fail, hook.Destroy)
	lb.e.IgnoreBackoff = true
	lb.run()
	if exists(lb.l.AppJSON(web)) {
		t.Errorf("app.json left after the retry:\n%s", lb.log)
	}
}
