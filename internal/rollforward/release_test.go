package rollforward

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/appspec"
	"github.com/jecloud/jecloud/internal/oneoff"
	"github.com/jecloud/jecloud/internal/state"
)

// fakeRelease stands in for oneoff.RunRelease (which needs systemd; the
// e2e TestReleasePhase runs the real one): it records each run among the
// hooks' calls, so their order shows, and answers with results in turn.
type fakeRelease struct {
	lb      *lab
	results []error
	runs    []oneoff.Process
	command string
	timeout time.Duration
}

func (f *fakeRelease) run(ctx context.Context, p oneoff.Process, command string, timeout time.Duration, log io.Writer) error {
	f.lb.rec.mu.Lock()
	f.lb.rec.calls = append(f.lb.rec.calls, "release:"+p.ReleaseDir[len(p.ReleaseDir)-12:])
	f.lb.rec.mu.Unlock()
	f.runs = append(f.runs, p)
	f.command, f.timeout = command, timeout
	io.WriteString(log, "migrating\n")
	if len(f.results) == 0 {
		return nil
	}
	err := f.results[0]
	f.results = f.results[1:]
	return err
}

func TestReleaseCommand(t *testing.T) {
	lb := newLab(t)
	f := &fakeRelease{lb: lb}
	lb.e.Release = f.run
	procfile := "web: node server.js\nrelease: ./migrate --all\n"
	v1 := lb.push(web, map[string]string{"Procfile": procfile, "jecloud.toml": "[grace]\nrelease = \"45m\"\n\n[limits.release]\nmemory = \"1G\"\n"})
	lb.request(web, v1)
	lb.run()
	want := "install:" + v1 + " prepare:" + v1 + " release:" + v1 + " deployed:" + v1
	if got := strings.Join(lb.rec.calls, " "); got != want {
		t.Fatalf("calls %q, want %q\n%s", got, want, lb.log)
	}
	p := f.runs[0]
	if f.command != "./migrate --all" || f.timeout != 45*time.Minute || p.ReleaseDir != lb.l.Release(web, v1) ||
		p.AppDir != lb.l.AppDir(web) || p.User == "" || p.Limits.Memory != "1G" || p.Limits.Tasks != appspec.DefaultTasks {
		t.Errorf("release run: command %q, timeout %s, process %+v", f.command, f.timeout, p)
	}
	if !strings.Contains(lb.log.String(), "migrating") {
		t.Errorf("the release command's output is not in the log:\n%s", lb.log)
	}
	// A restart of the live version does not run it again.
	lb.rec.calls = nil
	lb.request(web, v1)
	lb.run()
	if got := strings.Join(lb.rec.calls, " "); got != "deployed:"+v1 {
		t.Errorf("a restart called %q", got)
	}
	// A rollback to v1 (its release still here) does not run it again.
	v3 := lb.push(web, map[string]string{"Procfile": procfile, "x": "3"})
	lb.request(web, v3)
	lb.run()
	runs := len(f.runs)
	if _, err := state.UpdateApp(lb.l.AppJSON(web), func(a *state.App) error { a.Request(v1, lb.now, true); return nil }); err != nil {
		t.Fatal(err)
	}
	lb.run()
	if len(f.runs) != runs || lb.live(web) != v1 || !strings.Contains(lb.log.String(), "a rollback does not run the release command") {
		t.Errorf("a rollback ran the release command (%d runs, want %d), live %s", len(f.runs), runs, lb.live(web))
	}
	// A release without a release command goes from prepare to the switch.
	lb.rec.calls = nil
	v2 := lb.push(web, map[string]string{"Procfile": "web: node server.js\n"})
	lb.request(web, v2)
	lb.run()
	if got := strings.Join(lb.rec.calls, " "); strings.Contains(got, "release:") || lb.live(web) != v2 {
		t.Errorf("without a release command: calls %q, live %s", got, lb.live(web))
	}
}

func TestReleaseCommandFails(t *testing.T) {
	lb := newLab(t)
	f := &fakeRelease{lb: lb}
	lb.e.Release = f.run
	v1 := lb.push(web, map[string]string{"Procfile": "web: a\n"})
	lb.request(web, v1)
	lb.run()
	v2 := lb.push(web, map[string]string{"Procfile": "web: a\nrelease: ./migrate\n"})
	f.results = []error{&oneoff.ReleaseError{Command: "./migrate", Status: 7, Tail: []string{"applying 41", "42: relation \"users\" exists"}}}
	lb.rec.calls = nil
	lb.request(web, v2)
	lb.run()
	a := lb.app(web)
	r := lb.lastFailure(web)
	if a.CurrentVersion != v1 || lb.live(web) != v1 || a.Deployment != nil {
		t.Fatalf("after a failed release command: current %s, live %s, deployment %+v", a.CurrentVersion, lb.live(web), a.Deployment)
	}
	for _, w := range []string{`the release command "./migrate" failed with exit status 7`, "applying 41\n42: relation \"users\" exists", v2 + " was not switched to"} {
		if !strings.Contains(r, w) {
			t.Errorf("reason %q lacks %q", r, w)
		}
	}
	if got := strings.Join(lb.rec.calls, " "); strings.Contains(got, "deployed:") {
		t.Errorf("the deployed hooks ran after a failed release command: %q", got)
	}
}

// TestReleaseCommandCrash: a run that dies while the release command runs
// (an error that is not the command's own failure) leaves the deployment
// at releasing; the next run runs the command again, then switches. After
// the switch, a crash does not run it again.
func TestReleaseCommandCrash(t *testing.T) {
	lb := newLab(t)
	f := &fakeRelease{lb: lb}
	killed := false
	lb.e.Release = func(ctx context.Context, p oneoff.Process, command string, timeout time.Duration, log io.Writer) error {
		f.run(ctx, p, command, timeout, log)
		if !killed {
			killed = true
			panic("the agent is killed while the release command runs")
		}
		return nil
	}
	v1 := lb.push(web, map[string]string{"Procfile": "web: a\nrelease: ./migrate\n"})
	lb.request(web, v1)
	func() {
		defer func() { recover() }()
		lb.e.Run(context.Background())
	}()
	if a := lb.app(web); a.Deployment == nil || a.Deployment.State != state.StateReleasing || lb.live(web) != "" {
		t.Fatalf("after the release command died: %+v, live %q\n%s", a.Deployment, lb.live(web), lb.log)
	}
	lb.run()
	if len(f.runs) != 2 || lb.live(web) != v1 || lb.app(web).CurrentVersion != v1 {
		t.Fatalf("runs %d, live %q\n%s", len(f.runs), lb.live(web), lb.log)
	}
	// Killed after the switch (at starting): the next run starts the
	// release, and does not run the release command again.
	v2 := lb.push(web, map[string]string{"Procfile": "web: a\nrelease: ./migrate v2\n"})
	lb.e.Fault = func(point string) {
		if point == "switch:done" {
			panic("killed")
		}
	}
	lb.request(web, v2)
	func() {
		defer func() { recover() }()
		lb.e.Run(context.Background())
	}()
	lb.e.Fault = nil
	if a := lb.app(web); a.Deployment == nil || a.Deployment.State != state.StateSwitching || lb.live(web) != v2 {
		t.Fatalf("after a kill at the switch: %+v, live %q", a.Deployment, lb.live(web))
	}
	lb.run()
	if len(f.runs) != 3 || lb.app(web).CurrentVersion != v2 {
		t.Errorf("release runs %d (want 3: twice for v1, once for v2), current %s", len(f.runs), lb.app(web).CurrentVersion)
	}
}
