package push

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/jecloud/jecloud/internal/remote"
)

func TestResultOf(t *testing.T) {
	web := remote.Target{Dest: "deploy@203.0.113.7"}
	worker := remote.Target{Dest: "deploy@203.0.113.8", Role: "worker"}
	const v1, v2 = "aaaaaaaaaaaa", "bbbbbbbbbbbb"
	for _, tc := range []struct {
		name       string
		t          remote.Target
		version    string
		a          AppStatus
		domains    []string
		destroying bool
		state      string
		reason     string
		urls       []string
	}{
		{name: "live, with its domains", t: web, version: v2, a: AppStatus{CurrentVersion: v2}, domains: []string{"shop.example.com"},
			state: "live", urls: []string{"http://203.0.113.7/", "https://shop.example.com/"}},
		{name: "a worker server has no URL of its own", t: worker, version: v2, a: AppStatus{CurrentVersion: v2}, state: "live"},
		{name: "failed, the old one live", t: web, version: v2,
			a:     AppStatus{CurrentVersion: v1, RecentFailed: []Deployment{{Version: v1, Reason: "old"}, {Version: v2, Reason: "npm ci failed"}}},
			state: "failed", reason: "npm ci failed"},
		{name: "an older failure of another version is not this one's", t: web, version: v2,
			a: AppStatus{CurrentVersion: v1, RecentFailed: []Deployment{{Version: v1, Reason: "old"}}}, state: "not deployed"},
		{name: "still under way", t: web, version: v2, a: AppStatus{CurrentVersion: v1, Deployment: &Deployment{Version: v2, State: "preparing"}},
			state: "deploying", reason: "at step preparing"},
		{name: "another version under way", t: web, version: v2, a: AppStatus{CurrentVersion: v1, Deployment: &Deployment{Version: "cccccccccccc", State: "requested"}},
			state: "not deployed"},
		{name: "rollback: whatever is live", t: web, a: AppStatus{CurrentVersion: v1}, state: "live", urls: []string{"http://203.0.113.7/"}},
		{name: "rollback that failed", t: web, a: AppStatus{RecentFailed: []Deployment{{Version: v1, Reason: "boom"}}}, state: "failed", reason: "boom"},
		{name: "being destroyed is not live", t: web, version: v2, a: AppStatus{CurrentVersion: v2}, destroying: true, state: "destroying"},
		{name: "app.json does not parse", t: web, version: v2, a: AppStatus{Error: "app.json:3:1: bad"}, state: "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := resultOf(tc.t, tc.version, tc.a, tc.domains, tc.destroying)
			if r.State != tc.state || r.Reason != tc.reason || !slices.Equal(r.URLs, tc.urls) {
				t.Errorf("got state %q reason %q urls %q, want %q %q %q", r.State, r.Reason, r.URLs, tc.state, tc.reason, tc.urls)
			}
			if r.Host != tc.t.Name() || r.Version != tc.version || r.Live != tc.a.CurrentVersion {
				t.Errorf("host %q version %q live %q", r.Host, r.Version, r.Live)
			}
		})
	}
}

// TestPushGlobalTellsRequested: a push through the global state (deploy =
// "s3") tells Options.Requested its version before anything is sent, as a
// push over SSH does: --json then reports whether that version is live.
// Without it the result had no version, and a server still running the
// old release counted as "live".
func TestPushGlobalTellsRequested(t *testing.T) {
	stop := errors.New("stop here")
	var got string
	c := &Client{App: "shop", Env: "prod", Stdout: io.Discard, Stderr: io.Discard, Global: &Global{}}
	dir := appDir(t)
	err := c.Push(t.Context(), dir, Options{Requested: func(_ context.Context, id string) error { got = id; return stop }})
	if !errors.Is(err, stop) {
		t.Fatalf("Push: %v, want Requested's error before anything is sent", err)
	}
	want, err := c.hash(t.Context(), dir)
	if err != nil || got != want {
		t.Errorf("Requested was told %q, want the version %q (%v)", got, want, err)
	}
}
