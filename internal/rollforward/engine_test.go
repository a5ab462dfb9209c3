package rollforward

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/bundle"
	"github.com/jecloud/jecloud/internal/hook"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/klauspost/compress/zstd"
)

var web = state.AppEnv{App: "web", Env: "prod"}

// recorder is a built-in hook that records its calls and fails on demand.
type recorder struct {
	mu    sync.Mutex
	calls []string
	fail  map[string]string // "phase" or "phase:version" -> message
}

func (r *recorder) Name() string { return "recorder" }
func (r *recorder) Run(ctx context.Context, req hook.Request, log io.Writer) (hook.Response, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, req.Phase+":"+req.Version)
	fmt.Fprintf(log, "%s %s\n", req.Phase, req.Version)
	for _, k := range []string{req.Phase, req.Phase + ":" + req.Version} {
		if msg, ok := r.fail[k]; ok {
			return hook.Response{}, &hook.Error{Hook: r.Name(), Phase: req.Phase, Reason: msg}
		}
	}
	return hook.Response{}, nil
}

type lab struct {
	t   *testing.T
	l   state.Layout
	e   *Engine
	rec *recorder
	log *bytes.Buffer
	now time.Time
}

func newLab(t *testing.T) *lab {
	lb := &lab{t: t, l: state.Layout{Root: t.TempDir()}, rec: &recorder{fail: map[string]string{}},
		log: &bytes.Buffer{}, now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	lb.e = &Engine{
		Layout: lb.l,
		Hooks:  func() ([]hook.Hook, error) { return []hook.Hook{lb.rec}, nil },
		Log:    lb.log,
		Now:    func() time.Time { return lb.now },
	}
	return lb
}

// push makes a bundle of files (path -> content) and stores it as the
// server's upload would; it returns the version ID.
func (lb *lab) push(ae state.AppEnv, files map[string]string) string {
	lb.t.Helper()
	dir := lb.t.TempDir()
	for p, c := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			lb.t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	id, err := bundle.Write(dir, &buf, bundle.WriteOptions{})
	if err != nil {
		lb.t.Fatal(err)
	}
	lb.store(ae, id, buf.Bytes())
	return id
}

func (lb *lab) store(ae state.AppEnv, id string, data []byte) {
	lb.t.Helper()
	os.MkdirAll(lb.l.Versions(ae), 0o755)
	if err := os.WriteFile(lb.l.Bundle(ae, id), data, 0o644); err != nil {
		lb.t.Fatal(err)
	}
}

// rawBundle builds a bundle from hand-made tar headers (hostile ones too)
// and returns it with its true ID.
func rawBundle(t *testing.T, entries []tar.Header, bodies []string) (string, []byte) {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for i, h := range entries {
		h := h
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(bodies[i]))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, bodies[i])
		}
	}
	tw.Close()
	sum := sha256.Sum256(tb.Bytes())
	var zb bytes.Buffer
	zw, _ := zstd.NewWriter(&zb)
	zw.Write(tb.Bytes())
	zw.Close()
	return bundle.ID(sum[:]), zb.Bytes()
}

func (lb *lab) request(ae state.AppEnv, id string) {
	lb.t.Helper()
	if _, err := state.UpdateApp(lb.l.AppJSON(ae), func(a *state.App) error {
		a.Request(id, lb.now, false)
		return nil
	}); err != nil {
		lb.t.Fatal(err)
	}
}

func (lb *lab) run() []Problem {
	lb.t.Helper()
	problems, err := lb.e.Run(context.Background())
	if err != nil {
		lb.t.Fatalf("run: %v\nlog:\n%s", err, lb.log)
	}
	return problems
}

func (lb *lab) app(ae state.AppEnv) *state.App {
	lb.t.Helper()
	var a state.App
	if err := state.Read(lb.l.AppJSON(ae), &a); err != nil {
		lb.t.Fatal(err)
	}
	return &a
}

func (lb *lab) live(ae state.AppEnv) string {
	target, _ := os.Readlink(lb.l.Current(ae))
	return target
}

// lastFailure returns the reason of the last failed deployment.
func (lb *lab) lastFailure(ae state.AppEnv) string {
	a := lb.app(ae)
	if n := len(a.RecentFailedDeployments); n > 0 {
		return a.RecentFailedDeployments[n-1].Reason
	}
	return ""
}

func TestDeploy(t *testing.T) {
	lb := newLab(t)
	v1 := lb.push(web, map[string]string{"server.js": "v1", "lib/a.js": "a"})
	lb.request(web, v1)
	lb.run()
	a := lb.app(web)
	if a.CurrentVersion != v1 || a.Deployment != nil || lb.live(web) != v1 {
		t.Fatalf("after deploy: current %q live %q deployment %+v\n%s", a.CurrentVersion, lb.live(web), a.Deployment, lb.log)
	}
	if got, _ := os.ReadFile(filepath.Join(lb.l.Current(web), "lib/a.js")); string(got) != "a" {
		t.Errorf("release content: %q", got)
	}
	want := "install:" + v1 + " prepare:" + v1 + " deployed:" + v1
	if got := strings.Join(lb.rec.calls, " "); got != want {
		t.Errorf("hooks called %q, want %q", got, want)
	}
	// A second deploy: previous version recorded, rollback target known.
	v2 := lb.push(web, map[string]string{"server.js": "v2"})
	lb.request(web, v2)
	lb.run()
	a = lb.app(web)
	if a.CurrentVersion != v2 || a.LastGood() != v1 || len(a.DeployedVersions) != 2 {
		t.Fatalf("after second deploy: %+v", a)
	}
	// Nothing left to do: the plan is empty and nothing is written.
	if steps, _, _ := lb.e.Plan(); len(steps) != 0 {
		t.Errorf("idle plan: %v", steps)
	}
	// Deploying the live version again restarts it without unpacking.
	lb.rec.calls = nil
	lb.request(web, v2)
	lb.run()
	if got := strings.Join(lb.rec.calls, " "); got != "deployed:"+v2 {
		t.Errorf("redeploy of the live version called %q", got)
	}
}

func TestFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(lb *lab) string // returns the version to deploy
		reason string
	}{
		{"failing prepare hook", func(lb *lab) string {
			lb.rec.fail["prepare"] = "npm ci: lockfile out of date"
			return lb.push(web, map[string]string{"x": "2"})
		}, "prepare hook recorder failed: npm ci: lockfile out of date"},
		{"corrupted bundle", func(lb *lab) string {
			id := lb.push(web, map[string]string{"x": "2"})
			data, _ := os.ReadFile(lb.l.Bundle(web, id))
			other := lb.push(web, map[string]string{"x": "3"})
			os.Remove(lb.l.Bundle(web, other))
			lb.store(web, other, data) // the bytes of id under the name other
			return other
		}, "is corrupted: its content hashes to"},
		{"missing bundle", func(lb *lab) string { return "0123456789ab" }, "is not on this server"},
		{"path traversal", func(lb *lab) string {
			id, data := rawBundle(lb.t, []tar.Header{{Name: "../evil", Typeflag: tar.TypeReg, Mode: 0o644}}, []string{"x"})
			lb.store(web, id, data)
			return id
		}, "refused"},
		{"absolute path", func(lb *lab) string {
			id, data := rawBundle(lb.t, []tar.Header{{Name: "/etc/evil", Typeflag: tar.TypeReg, Mode: 0o644}}, []string{"x"})
			lb.store(web, id, data)
			return id
		}, "refused"},
		{"symlink escape", func(lb *lab) string {
			id, data := rawBundle(lb.t, []tar.Header{{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "../../../../etc"}}, []string{""})
			lb.store(web, id, data)
			return id
		}, "refused"},
		{"write through symlink", func(lb *lab) string {
			id, data := rawBundle(lb.t, []tar.Header{
				{Name: "d", Typeflag: tar.TypeSymlink, Linkname: "."},
				{Name: "d/x", Typeflag: tar.TypeReg, Mode: 0o644}}, []string{"", "x"})
			lb.store(web, id, data)
			return id
		}, "refused"},
		{"zstd bomb", func(lb *lab) string {
			lb.e.Limits = bundle.DefaultLimits()
			lb.e.Limits.MaxTarBytes = 1 << 20
			id, data := rawBundle(lb.t, []tar.Header{{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644}}, []string{strings.Repeat("\x00", 8<<20)})
			lb.store(web, id, data)
			return id
		}, "refused"},
		{"out of disk space", func(lb *lab) string {
			lb.e.DiskReserve = 1 << 60
			return lb.push(web, map[string]string{"x": "2"})
		}, "out of disk space"},
		{"failing start rolls back", func(lb *lab) string {
			id := lb.push(web, map[string]string{"x": "2"})
			lb.rec.fail["deployed:"+id] = "port 3000 never answered"
			return id
		}, "port 3000 never answered; rolled back to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb := newLab(t)
			v1 := lb.push(web, map[string]string{"x": "1"})
			lb.request(web, v1)
			lb.run()
			v := tc.setup(lb)
			lb.request(web, v)
			lb.run()
			a := lb.app(web)
			if a.CurrentVersion != v1 || lb.live(web) != v1 || a.Deployment != nil {
				t.Fatalf("current %q live %q deployment %+v, want %s still live\n%s", a.CurrentVersion, lb.live(web), a.Deployment, v1, lb.log)
			}
			if r := lb.lastFailure(web); !strings.Contains(r, tc.reason) {
				t.Fatalf("failure reason %q, want %q\n%s", r, tc.reason, lb.log)
			}
			if got, _ := os.ReadFile(filepath.Join(lb.l.Current(web), "x")); string(got) != "1" {
				t.Errorf("current release content %q", got)
			}
			if _, err := os.Stat(lb.l.Release(web, v)); err == nil && !strings.Contains(tc.name, "start") && !strings.Contains(tc.name, "prepare") {
				t.Errorf("a release dir was left for refused version %s", v)
			}
			entries, _ := os.ReadDir(lb.l.Versions(web))
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".") {
					t.Errorf("leftover %s", e.Name())
				}
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(lb.l.Root), "evil")); err == nil {
				t.Error("a file was written outside the release")
			}
		})
	}
}

func TestFirstDeployFailingStartTakesItOffline(t *testing.T) {
	lb := newLab(t)
	v := lb.push(web, map[string]string{"x": "1"})
	lb.rec.fail["deployed"] = "crashed at boot"
	lb.request(web, v)
	lb.run()
	a := lb.app(web)
	if a.CurrentVersion != "" || lb.live(web) != "" || !strings.Contains(lb.lastFailure(web), "crashed at boot") {
		t.Fatalf("current %q live %q failure %q", a.CurrentVersion, lb.live(web), lb.lastFailure(web))
	}
	// And the plan is then empty: no loop re-deploying it.
	if steps, _, _ := lb.e.Plan(); len(steps) != 0 {
		t.Errorf("plan after failure: %v", steps)
	}
}

func TestBrokenAppJSONBesideHealthyApp(t *testing.T) {
	lb := newLab(t)
	bad := state.AppEnv{App: "api", Env: "prod"}
	os.MkdirAll(lb.l.AppDir(bad), 0o755)
	broken := "{\n  \"current_version\": \"841bc9a0e2f1\",\n}\n"
	os.WriteFile(lb.l.AppJSON(bad), []byte(broken), 0o644)
	v := lb.push(web, map[string]string{"x": "1"})
	lb.request(web, v)
	problems := lb.run()
	if lb.app(web).CurrentVersion != v {
		t.Fatal("the healthy app was not deployed")
	}
	if len(problems) != 1 || problems[0].AppEnv != bad || !strings.Contains(problems[0].Err.Error(), "app.json:3:1") {
		t.Fatalf("problems = %v", problems)
	}
	if got, _ := os.ReadFile(lb.l.AppJSON(bad)); string(got) != broken {
		t.Errorf("the broken file was rewritten: %q", got)
	}
}

func TestHandEdits(t *testing.T) {
	lb := newLab(t)
	v1 := lb.push(web, map[string]string{"x": "1"})
	v2 := lb.push(web, map[string]string{"x": "2"})
	lb.request(web, v1)
	lb.run()

	// A person sets deployment.version, with a key of their own.
	edit := fmt.Sprintf(`{"current_version": %q, "deployment": {"version": %q}, "note": "deployed by hand, see ticket 12"}`, v1, v2)
	os.WriteFile(lb.l.AppJSON(web), []byte(edit), 0o644)
	lb.run()
	a := lb.app(web)
	if a.CurrentVersion != v2 || lb.live(web) != v2 || string(a.Extra["note"]) != `"deployed by hand, see ticket 12"` {
		t.Fatalf("after hand-edited deployment: %+v live %s", a, lb.live(web))
	}

	// A person sets current_version back to v1: that is a deployment of v1.
	raw, _ := os.ReadFile(lb.l.AppJSON(web))
	os.WriteFile(lb.l.AppJSON(web), bytes.Replace(raw, []byte(`"current_version": "`+v2), []byte(`"current_version": "`+v1), 1), 0o644)
	lb.rec.calls = nil
	lb.run()
	a = lb.app(web)
	if a.CurrentVersion != v1 || lb.live(web) != v1 {
		t.Fatalf("after hand-edited current_version: %+v live %s\n%s", a, lb.live(web), lb.log)
	}
	if got := strings.Join(lb.rec.calls, " "); !strings.Contains(got, "deployed:"+v1) {
		t.Errorf("hooks: %s", got)
	}

	// A hand edit to a stale state for a release not on disk restarts from the beginning.
	v3 := lb.push(web, map[string]string{"x": "3"})
	os.WriteFile(lb.l.AppJSON(web), []byte(fmt.Sprintf(`{"current_version": %q, "deployment": {"version": %q, "state": "starting"}}`, v1, v3)), 0o644)
	lb.run()
	if a := lb.app(web); a.CurrentVersion != v3 {
		t.Fatalf("stale state: %+v\n%s", a, lb.log)
	}
}

func TestNewestWins(t *testing.T) {
	lb := newLab(t)
	v1 := lb.push(web, map[string]string{"x": "1"})
	v2 := lb.push(web, map[string]string{"x": "2"})
	v3 := lb.push(web, map[string]string{"x": "3"})
	lb.request(web, v1)
	lb.run()
	// v2 is requested; while its prepare hook runs, v3 is requested.
	lb.rec.fail = nil
	lb.e.Hooks = func() ([]hook.Hook, error) {
		return []hook.Hook{hookFunc(func(req hook.Request) {
			if req.Phase == hook.Prepare && req.Version == v2 {
				lb.request(web, v3)
			}
		})}, nil
	}
	lb.request(web, v2)
	lb.run()
	a := lb.app(web)
	if a.CurrentVersion != v3 || len(a.AbortedDeploymentVersions) != 1 || a.AbortedDeploymentVersions[0] != v2 {
		t.Fatalf("newest must win: %+v\n%s", a, lb.log)
	}
}

type hookFunc func(hook.Request)

func (hookFunc) Name() string { return "func" }
func (f hookFunc) Run(ctx context.Context, req hook.Request, log io.Writer) (hook.Response, error) {
	f(req)
	return hook.Response{}, nil
}

func TestBackoff(t *testing.T) {
	lb := newLab(t)
	v := lb.push(web, map[string]string{"x": "1"})
	broken := errors.New("hooks.d: input/output error")
	lb.e.Hooks = func() ([]hook.Hook, error) { return nil, broken }
	lb.request(web, v)
	var delays []time.Duration
	for i := 0; i < MaxAttempts; i++ {
		problems := lb.run()
		a := lb.app(web)
		if i == MaxAttempts-1 {
			break
		}
		b := a.Backoff
		if b == nil || b.Failures != i+1 || b.LastError != broken.Error() || b.Step != "deploy:installing" {
			t.Fatalf("attempt %d: backoff %+v\n%s", i+1, b, lb.log)
		}
		if len(problems) != 1 || !strings.Contains(problems[0].Err.Error(), "backing off") {
			t.Fatalf("problems %v", problems)
		}
		delays = append(delays, b.NextTry.Sub(lb.now))
		lb.now = b.NextTry
	}
	want := []time.Duration{1, 1, 2, 3, 5, 8, 13}
	for i := range want {
		if delays[i] != want[i]*time.Minute {
			t.Fatalf("delays %v, want Fibonacci minutes %v", delays, want)
		}
	}
	a := lb.app(web)
	if a.Deployment != nil || !strings.Contains(lb.lastFailure(web), "failed 8 times") {
		t.Fatalf("after %d attempts: %+v", MaxAttempts, a)
	}
}

// TestRunLockedPicksUpALateRequest: a request written after a run's last
// plan, while it still holds the lock, is left to that run by the
// roll-forward its requester starts (it finds the lock held). The holder
// must plan again once it lets go, not leave it for the next timer tick.
func TestRunLockedPicksUpALateRequest(t *testing.T) {
	lb := newLab(t)
	api := state.AppEnv{App: "api", Env: "prod"}
	v1 := lb.push(web, map[string]string{"x": "1"})
	v2 := lb.push(api, map[string]string{"x": "2"})
	lb.request(web, v1)
	late := 0
	lb.e.Fault = func(point string) {
		if point != "run:unlocking" || late > 0 {
			return
		}
		late++
		lb.request(api, v2)
		// The roll-forward the requester starts finds the lock held.
		lb2 := &Engine{Layout: lb.l, Log: io.Discard, Now: lb.e.Now}
		if ok, holder, err := lb2.RunLocked(context.Background()); ok || err != nil || holder != os.Getpid() {
			t.Errorf("second run: ok %v, holder %d, err %v; want the lock held by this process", ok, holder, err)
		}
	}
	ok, _, err := lb.e.RunLocked(context.Background())
	if !ok || err != nil {
		t.Fatalf("RunLocked: ok %v, err %v\n%s", ok, err, lb.log)
	}
	if late != 1 {
		t.Fatalf("the run:unlocking point was reached %d times", late)
	}
	for ae, v := range map[state.AppEnv]string{web: v1, api: v2} {
		if a := lb.app(ae); a.CurrentVersion != v || lb.live(ae) != v {
			t.Errorf("%s: current %s, live %s; want %s\n%s", ae, a.CurrentVersion, lb.live(ae), v, lb.log)
		}
	}
}
