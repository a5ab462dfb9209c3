package rollforward

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/state"
)

// TestWatchdog (issue #22 §4): a release that crash-loops within its
// window after going live is rolled back by the agent itself, with why;
// one that restarts no more than allowed keeps running and the watch
// ends with its window; a first deploy and a rollback are not watched.
func TestWatchdog(t *testing.T) {
	lb := newLab(t)
	restarts := 0
	lb.e.Restarts = func(ctx context.Context, ae state.AppEnv, version string) (int, error) { return restarts, nil }
	toml := "[watchdog]\nwindow = \"5m\"\nrestarts = 2\n"
	v1 := lb.push(web, map[string]string{"jecloud.toml": toml, "x": "1"})
	lb.request(web, v1)
	lb.run()
	if a := lb.app(web); a.CurrentVersion != v1 || a.Watch != nil {
		t.Fatalf("first deploy: %+v (nothing to go back to: no watch)", a)
	}

	// v2 restarts twice (allowed), and runs through its window.
	v2 := lb.push(web, map[string]string{"jecloud.toml": toml, "x": "2"})
	lb.request(web, v2)
	restarts = 1 // seen by the deploy's own checks: the baseline
	lb.run()
	w := lb.app(web).Watch
	if w == nil || w.Version != v2 || w.Previous != v1 || w.MaxRestarts != 2 || w.Baseline != 1 || !w.Until.Equal(lb.now.Add(5*time.Minute)) {
		t.Fatalf("watch after v2 went live: %+v", w)
	}
	restarts = 3
	lb.now = lb.now.Add(time.Minute)
	lb.run()
	if a := lb.app(web); a.CurrentVersion != v2 || a.Watch == nil || a.Watch.Restarts != 2 {
		t.Fatalf("2 restarts, 2 allowed: %+v", a.Watch)
	}
	lb.now = lb.now.Add(5 * time.Minute)
	lb.run()
	if a := lb.app(web); a.CurrentVersion != v2 || a.Watch != nil || a.Deployment != nil {
		t.Fatalf("after the window: %+v", a)
	}
	if !strings.Contains(lb.log.String(), "ran through its window with 2 restarts") {
		t.Errorf("log:\n%s", lb.log)
	}

	// v3 crash-loops: rolled back to v2 by the watchdog.
	v3 := lb.push(web, map[string]string{"jecloud.toml": toml, "x": "3"})
	lb.request(web, v3)
	restarts = 0
	lb.run()
	restarts = 3
	lb.now = lb.now.Add(40 * time.Second)
	lb.run()
	a := lb.app(web)
	if a.CurrentVersion != v2 || a.Watch != nil || a.Deployment != nil {
		t.Fatalf("after v3 restarted 3 times: %+v\n%s", a, lb.log)
	}
	f := a.RecentFailedDeployments[len(a.RecentFailedDeployments)-1]
	if f.Version != v3 || f.By != Watcher || !strings.Contains(f.Reason, "crash loop: its processes restarted 3 times in 40s after it went live, more than the 2") || !strings.Contains(f.Reason, "rolled back to "+v2) {
		t.Errorf("failure recorded: %+v", f)
	}
	if d := a.DeployedVersions[len(a.DeployedVersions)-1]; d.Version != v2 || d.By != Watcher {
		t.Errorf("the rollback: %+v", d)
	}
	if !a.Failed(v3) {
		t.Errorf("v3 is not counted as failed (jepush rollback would pick it)")
	}
}
