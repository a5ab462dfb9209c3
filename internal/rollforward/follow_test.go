package rollforward

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/state"
)

// TestFollowRetryInTheSameSecond: dates in app.json have whole seconds, so
// a failed attempt and its retry (a script, or a person quick on the
// keyboard) can share version and request date. Following the retry must
// report the retry's outcome, not the earlier failure.
func TestFollowRetryInTheSameSecond(t *testing.T) {
	for _, tc := range []struct {
		name      string
		failAgain bool
	}{
		{"retry succeeds", false},
		{"retry fails too", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb := newLab(t)
			v1 := lb.push(web, map[string]string{"x": "1"})
			v2 := lb.push(web, map[string]string{"x": "2"})
			lb.request(web, v1)
			lb.run()
			lb.rec.fail["prepare:"+v2] = "npm ci: lockfile out of date"
			lb.request(web, v2)
			lb.run()
			if len(lb.app(web).RecentFailedDeployments) != 1 {
				t.Fatal("the first attempt did not fail")
			}
			if !tc.failAgain {
				delete(lb.rec.fail, "prepare:"+v2)
			}
			lb.request(web, v2) // same second: lb.now has not moved
			done := make(chan error, 1)
			go func() {
				time.Sleep(100 * time.Millisecond) // Follow sees it pending first
				_, err := lb.e.Run(context.Background())
				done <- err
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := Follow(ctx, lb.l, web, v2, lb.now, 0, io.Discard, nil)
			if rerr := <-done; rerr != nil {
				t.Fatal(rerr)
			}
			if err != nil {
				t.Fatal(err)
			}
			a := lb.app(web)
			switch {
			case tc.failAgain && (res.Live || res.Reason != "prepare hook recorder failed: npm ci: lockfile out of date" || len(a.RecentFailedDeployments) != 2):
				t.Fatalf("outcome %+v, failures %d; want the retry's failure", res, len(a.RecentFailedDeployments))
			case !tc.failAgain && (!res.Live || a.CurrentVersion != v2):
				t.Fatalf("outcome %+v, current %s; want %s live", res, a.CurrentVersion, v2)
			}
		})
	}
}

// TestOutcomeCountsStaleFailures checks outcome on its own.
func TestOutcomeCountsStaleFailures(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	v := "aaaaaaaaaaaa"
	fail := func(reason string) state.Failure { return state.Failure{Version: v, RequestDate: at, Reason: reason} }
	for _, tc := range []struct {
		name  string
		app   state.App
		stale int
		want  Outcome
	}{
		{"failed", state.App{RecentFailedDeployments: []state.Failure{fail("boom")}}, 0, Outcome{Reason: "boom"}},
		{"earlier failure, now live", state.App{CurrentVersion: v, RecentFailedDeployments: []state.Failure{fail("boom")}}, 1, Outcome{Live: true}},
		{"earlier failure, failed again", state.App{RecentFailedDeployments: []state.Failure{fail("boom"), fail("bang")}}, 1, Outcome{Reason: "bang"}},
		{"another date", state.App{CurrentVersion: v, RecentFailedDeployments: []state.Failure{{Version: v, RequestDate: at.Add(-time.Second), Reason: "old"}}}, 0, Outcome{Live: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := outcome(&tc.app, v, at, tc.stale); got != tc.want {
				t.Errorf("outcome = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestWatch: Follow looks again when app.json is replaced (the rename of
// an atomic write) or the log grows, and polls where nothing can be watched.
func TestWatch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, appDir, logDir string)
	}{
		{"app.json replaced", func(t *testing.T, appDir, _ string) {
			if err := atomicfile.WriteFile(filepath.Join(appDir, "app.json"), []byte("{}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"log line", func(t *testing.T, _, logDir string) {
			f, err := os.OpenFile(filepath.Join(logDir, "rollforward.log"), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString("a line\n"); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			appDir, logDir := t.TempDir(), t.TempDir()
			if err := os.WriteFile(filepath.Join(logDir, "rollforward.log"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			changed, stop := watch(appDir, logDir)
			defer stop()
			if changed == nil {
				t.Fatal("watch gave no channel for existing directories")
			}
			tc.change(t, appDir, logDir)
			select {
			case <-changed:
			case <-time.After(10 * time.Second): // a bound against a hang, not a speed check
				t.Fatal("no change seen")
			}
		})
	}
	t.Run("nothing to watch", func(t *testing.T) {
		changed, stop := watch(filepath.Join(t.TempDir(), "missing"))
		defer stop()
		if changed != nil {
			t.Fatal("watch of a missing directory should leave Follow polling")
		}
	})
}
