package rollforward

import (
	"context"
	"io"
	"testing"
	"time"

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
