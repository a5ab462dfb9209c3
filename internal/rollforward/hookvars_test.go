package rollforward

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/configvars"
	"github.com/jecloud/jecloud/internal/hook"
)

// varsHook returns vars[phase] in that phase and records the vars it was given.
type varsHook struct {
	vars map[string]map[string]string
	got  map[string]map[string]string // "phase:version" -> req.Vars
}

func (*varsHook) Name() string { return "vars" }
func (h *varsHook) Run(ctx context.Context, req hook.Request, log io.Writer) (hook.Response, error) {
	h.got[req.Phase+":"+req.Version] = req.Vars
	return hook.Response{Vars: h.vars[req.Phase]}, nil
}

// TestHookVars (issue #20 §7): what a hook returns in install and prepare
// reaches the later phases of the same deployment, is kept beside the
// release for its units (root's only), starts afresh with the next
// deployment of that version, and goes with the release. A var the app
// cannot be given fails the deployment, naming the hook and the var.
func TestHookVars(t *testing.T) {
	lb := newLab(t)
	h := &varsHook{got: map[string]map[string]string{}, vars: map[string]map[string]string{
		hook.Install: {"DATABASE_URL": `postgres://u:p"w@db/x`},
		hook.Prepare: {"ASSET_HOST": "cdn.example.com", "DATABASE_URL": "postgres://u:new@db/x"},
	}}
	lb.e.Hooks = func() ([]hook.Hook, error) { return []hook.Hook{h}, nil }
	v1 := lb.push(web, map[string]string{"x": "1"})
	lb.request(web, v1)
	lb.run()
	if a := lb.app(web); a.CurrentVersion != v1 {
		t.Fatalf("not live: %+v\n%s", a, lb.log)
	}
	want := map[string]string{"ASSET_HOST": "cdn.example.com", "DATABASE_URL": "postgres://u:new@db/x"}
	for phase, w := range map[string]map[string]string{
		hook.Install:  nil,
		hook.Prepare:  {"DATABASE_URL": `postgres://u:p"w@db/x`},
		hook.Deployed: want,
	} {
		if got := h.got[phase+":"+v1]; !equal(got, w) {
			t.Errorf("%s was given %v, want %v", phase, got, w)
		}
	}
	file := lb.l.HookVars(web, v1)
	got, err := configvars.Read(file)
	if err != nil || !equal(got, want) {
		t.Fatalf("%s: %v, %v; want %v", file, got, err, want)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, %v; want mode 0600 (the vars may be secrets)", file, fi, err)
	}

	// The next deployment of another version starts from nothing; v1's stay.
	h.vars = map[string]map[string]string{}
	v2 := lb.push(web, map[string]string{"x": "2"})
	lb.request(web, v2)
	lb.run()
	if got := h.got[hook.Deployed+":"+v2]; len(got) != 0 {
		t.Errorf("v2's deployed hook was given %v, want none", got)
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("v1's vars went while v1 is kept: %v", err)
	}

	// A var named as one JeCloud sets fails the deployment, naming both.
	h.vars = map[string]map[string]string{hook.Prepare: {"PORT": "80"}}
	v3 := lb.push(web, map[string]string{"x": "3"})
	lb.request(web, v3)
	lb.run()
	a := lb.app(web)
	if a.CurrentVersion != v2 || len(a.RecentFailedDeployments) == 0 {
		t.Fatalf("a hook returning PORT was deployed: %+v\n%s", a, lb.log)
	}
	if r := a.RecentFailedDeployments[len(a.RecentFailedDeployments)-1].Reason; !strings.Contains(r, "hook vars") || !strings.Contains(r, `"PORT"`) {
		t.Errorf("reason %q: want the hook and the var named", r)
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
