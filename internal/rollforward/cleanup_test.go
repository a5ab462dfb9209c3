package rollforward

import (
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

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
