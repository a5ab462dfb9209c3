package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/state"
)

func TestRemovable(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	rel := func(id string, age time.Duration) *Release {
		mtime := now.Add(-age)
		size := int64(100 << 20)
		return &Release{ID: id, Dir: true, Bundle: true, mtime: &mtime, size: &size}
	}
	id := func(c byte) string { return strings.Repeat(string(c), 12) }
	for _, tc := range []struct {
		name     string
		releases []*Release
		app      state.App
		live     string
		ret      state.Retention
		want     string // ids' first letters, in removal order
		why      string // in the reason of the step that removes the first
	}{
		{
			name:     "young releases stay",
			releases: []*Release{rel(id('a'), 1*day), rel(id('b'), 2*day), rel(id('c'), 3*day)},
			ret:      state.Retention{KeepReleases: 1},
			live:     id('a'),
			app:      state.App{CurrentVersion: id('a')},
			want:     "",
		},
		{
			name: "oldest beyond keep go",
			releases: []*Release{rel(id('a'), 30*day), rel(id('b'), 20*day), rel(id('c'), 10*day),
				rel(id('d'), 9*day), rel(id('e'), 8*day)},
			ret:  state.Retention{KeepReleases: 2},
			live: id('e'),
			app: state.App{CurrentVersion: id('e'), DeployedVersions: []state.Deployed{
				{Version: id('a')}, {Version: id('b')}, {Version: id('c')}, {Version: id('d')}, {Version: id('e')}}},
			want: "abc",
			why:  "more than 2 releases kept",
		},
		{
			name:     "never current, last good, pending or its previous",
			releases: []*Release{rel(id('a'), 30*day), rel(id('b'), 30*day), rel(id('c'), 30*day), rel(id('d'), 30*day), rel(id('e'), 30*day)},
			ret:      state.Retention{KeepReleases: 1},
			live:     id('b'),
			app: state.App{CurrentVersion: id('b'),
				DeployedVersions: []state.Deployed{{Version: id('a')}, {Version: id('b')}},
				Deployment:       &state.Deployment{Version: id('c'), PreviousVersion: id('d')}},
			want: "e",
		},
		{
			name:     "failed first, even within keep",
			releases: []*Release{rel(id('a'), 30*day), rel(id('f'), 10*day), rel(id('g'), 3*day), rel(id('b'), 9*day)},
			ret:      state.Retention{KeepReleases: 5},
			live:     id('b'),
			app: state.App{CurrentVersion: id('b'),
				DeployedVersions:          []state.Deployed{{Version: id('a')}, {Version: id('b')}},
				RecentFailedDeployments:   []state.Failure{{Version: id('f')}, {Version: id('g')}},
				AbortedDeploymentVersions: nil},
			want: "f",
			why:  "failed deployment",
		},
		{
			name:     "aborted never deployed counts as failed",
			releases: []*Release{rel(id('a'), 30*day), rel(id('x'), 10*day), rel(id('b'), 9*day)},
			ret:      state.Retention{},
			live:     id('b'),
			app: state.App{CurrentVersion: id('b'), DeployedVersions: []state.Deployed{{Version: id('b')}},
				AbortedDeploymentVersions: []string{id('x')}},
			want: "x",
			why:  "deployment replaced before it went live",
		},
		{
			// A push loop of broken versions (or one that fills the disk on
			// purpose) must not keep every failure for min_age_days.
			name: "failed beyond keep_failed go young",
			releases: []*Release{rel(id('b'), 9*day), rel(id('f'), 5*time.Hour), rel(id('g'), 4*time.Hour),
				rel(id('h'), 3*time.Hour), rel(id('i'), 2*time.Hour), rel(id('j'), 1*time.Hour)},
			ret:  state.Retention{},
			live: id('b'),
			app: state.App{CurrentVersion: id('b'), DeployedVersions: []state.Deployed{{Version: id('b')}},
				RecentFailedDeployments: []state.Failure{{Version: id('f')}, {Version: id('g')}, {Version: id('h')}, {Version: id('i')}, {Version: id('j')}}},
			want: "fg",
			why:  "more than 3 failed releases kept",
		},
		{
			name: "failed beyond failed_max_mb go young",
			releases: []*Release{rel(id('b'), 9*day), rel(id('f'), 3*time.Hour), rel(id('g'), 2*time.Hour),
				rel(id('h'), 1*time.Hour)},
			ret:  state.Retention{FailedMaxMB: 250},
			live: id('b'),
			app: state.App{CurrentVersion: id('b'), DeployedVersions: []state.Deployed{{Version: id('b')}},
				RecentFailedDeployments: []state.Failure{{Version: id('f')}, {Version: id('g')}, {Version: id('h')}}},
			want: "f",
			why:  "failed releases over 250.0 MiB",
		},
		{
			name:     "min age configurable",
			releases: []*Release{rel(id('a'), 2*day), rel(id('b'), 1*time.Hour)},
			ret:      state.Retention{KeepReleases: 1, MinAgeDays: 1},
			live:     id('b'),
			app:      state.App{CurrentVersion: id('b')},
			want:     "a",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &Env{App: &tc.app, Live: tc.live, Releases: map[string]*Release{}}
			for _, r := range tc.releases {
				o.Releases[r.ID] = r
			}
			var got []string
			for _, r := range removable(o, tc.ret, now) {
				got = append(got, r.ID[:1])
			}
			if strings.Join(got, "") != tc.want {
				t.Errorf("removable = %v, want %q", got, tc.want)
			}
			s, ok := planCleanup(o, tc.ret, now)
			if ok != (tc.want != "") || ok && !strings.Contains(s.Reason, tc.why) {
				t.Errorf("planCleanup = %q, %v; want a step whose reason says %q", s.Reason, ok, tc.why)
			}
		})
	}
}
