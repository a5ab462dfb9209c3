package rollforward

import (
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/state"
)

func TestRemovable(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	rel := func(id string, age time.Duration) *release {
		mtime := now.Add(-age)
		return &release{id: id, dir: true, bundle: true, mtime: &mtime}
	}
	id := func(c byte) string { return strings.Repeat(string(c), 12) }
	for _, tc := range []struct {
		name     string
		releases []*release
		app      state.App
		live     string
		ret      state.Retention
		want     string // ids' first letters, in removal order
	}{
		{
			name:     "young releases stay",
			releases: []*release{rel(id('a'), 1*day), rel(id('b'), 2*day), rel(id('c'), 3*day)},
			ret:      state.Retention{KeepReleases: 1},
			live:     id('a'),
			app:      state.App{CurrentVersion: id('a')},
			want:     "",
		},
		{
			name: "oldest beyond keep go",
			releases: []*release{rel(id('a'), 30*day), rel(id('b'), 20*day), rel(id('c'), 10*day),
				rel(id('d'), 9*day), rel(id('e'), 8*day)},
			ret:  state.Retention{KeepReleases: 2},
			live: id('e'),
			app: state.App{CurrentVersion: id('e'), DeployedVersions: []state.Deployed{
				{Version: id('a')}, {Version: id('b')}, {Version: id('c')}, {Version: id('d')}, {Version: id('e')}}},
			want: "abc",
		},
		{
			name:     "never current, last good, pending or its previous",
			releases: []*release{rel(id('a'), 30*day), rel(id('b'), 30*day), rel(id('c'), 30*day), rel(id('d'), 30*day), rel(id('e'), 30*day)},
			ret:      state.Retention{KeepReleases: 1},
			live:     id('b'),
			app: state.App{CurrentVersion: id('b'),
				DeployedVersions: []state.Deployed{{Version: id('a')}, {Version: id('b')}},
				Deployment:       &state.Deployment{Version: id('c'), PreviousVersion: id('d')}},
			want: "e",
		},
		{
			name:     "failed first, even within keep",
			releases: []*release{rel(id('a'), 30*day), rel(id('f'), 10*day), rel(id('g'), 3*day), rel(id('b'), 9*day)},
			ret:      state.Retention{KeepReleases: 5},
			live:     id('b'),
			app: state.App{CurrentVersion: id('b'),
				DeployedVersions:          []state.Deployed{{Version: id('a')}, {Version: id('b')}},
				RecentFailedDeployments:   []state.Failure{{Version: id('f')}, {Version: id('g')}},
				AbortedDeploymentVersions: nil},
			want: "f",
		},
		{
			name:     "aborted never deployed counts as failed",
			releases: []*release{rel(id('a'), 30*day), rel(id('x'), 10*day), rel(id('b'), 9*day)},
			ret:      state.Retention{},
			live:     id('b'),
			app: state.App{CurrentVersion: id('b'), DeployedVersions: []state.Deployed{{Version: id('b')}},
				AbortedDeploymentVersions: []string{id('x')}},
			want: "x",
		},
		{
			name:     "min age configurable",
			releases: []*release{rel(id('a'), 2*day), rel(id('b'), 1*time.Hour)},
			ret:      state.Retention{KeepReleases: 1, MinAgeDays: 1},
			live:     id('b'),
			app:      state.App{CurrentVersion: id('b')},
			want:     "a",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &observed{app: &tc.app, live: tc.live, releases: map[string]*release{}}
			for _, r := range tc.releases {
				o.releases[r.id] = r
			}
			var got []string
			for _, r := range removable(o, tc.ret, now) {
				got = append(got, r.id[:1])
			}
			if strings.Join(got, "") != tc.want {
				t.Errorf("removable = %v, want %q", got, tc.want)
			}
		})
	}
}

func TestCleanupRun(t *testing.T) {
	lb := newLab(t)
	var ids []string
	for i := 0; i < 8; i++ {
		v := lb.push(web, map[string]string{"x": string(rune('a' + i))})
		lb.request(web, v)
		lb.run()
		ids = append(ids, v)
	}
	// All young: nothing removed.
	if got := countReleases(t, lb); got != 8 {
		t.Fatalf("%d releases after young deploys, want 8", got)
	}
	// Eight days later, the default retention keeps 5.
	lb.now = lb.now.Add(8 * 24 * time.Hour)
	for i, v := range ids {
		old := time.Now().Add(-8*24*time.Hour + time.Duration(i)*time.Minute)
		os.Chtimes(lb.l.Release(web, v), old, old)
		os.Chtimes(lb.l.Bundle(web, v), old, old)
	}
	lb.e.Now = func() time.Time { return time.Now() }
	lb.rec.calls = nil
	lb.run()
	if got := countReleases(t, lb); got != 5 {
		t.Fatalf("%d releases after cleanup, want 5\n%s", got, lb.log)
	}
	for _, v := range ids[3:] {
		if _, err := os.Stat(lb.l.Release(web, v)); err != nil {
			t.Errorf("kept release %s missing", v)
		}
	}
	sort.Strings(lb.rec.calls)
	if len(lb.rec.calls) != 3 || !strings.HasPrefix(lb.rec.calls[0], "cleanup:") {
		t.Errorf("cleanup hooks: %v", lb.rec.calls)
	}
}

func countReleases(t *testing.T, lb *lab) int {
	entries, err := os.ReadDir(lb.l.Versions(web))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}
