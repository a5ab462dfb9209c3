package bundle

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCachedHash(t *testing.T) {
	defer func(w time.Duration) { racyWindow = w }(racyWindow)
	racyWindow = 0 // the files below are written before each hash
	dir, cache := t.TempDir(), t.TempDir()
	mkTree(t, dir, "a=1", "b/c*=2", "l->a")
	want, err := Hash(dir, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hash := func() (string, bool) {
		t.Helper()
		id, cached, err := CachedHash(dir, cache, WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return id, cached
	}
	if id, cached := hash(); id != want || cached {
		t.Fatalf("first: %s cached=%v, want %s from the files", id, cached, want)
	}
	if id, cached := hash(); id != want || !cached {
		t.Fatalf("unchanged: %s cached=%v, want %s from the cache", id, cached, want)
	}
	for _, tc := range []struct {
		name   string
		change func()
	}{
		{"same size, new content", func() { mkTree(t, dir, "a=9") }},
		{"content changed, times put back", func() {
			st, _ := os.Stat(filepath.Join(dir, "a"))
			mkTree(t, dir, "a=8")
			os.Chtimes(filepath.Join(dir, "a"), st.ModTime(), st.ModTime())
		}},
		{"mode", func() { chmod(t, filepath.Join(dir, "a"), 0o755) }},
		{"new file", func() { mkTree(t, dir, "d=4") }},
		{"symlink retargeted", func() { os.Remove(filepath.Join(dir, "l")); mkTree(t, dir, "l->d") }},
	} {
		tc.change()
		want, _ := Hash(dir, WriteOptions{})
		if id, cached := hash(); id != want || cached {
			t.Errorf("%s: %s cached=%v, want %s from the files", tc.name, id, cached, want)
		}
		if id, cached := hash(); id != want || !cached {
			t.Errorf("%s, then unchanged: %s cached=%v, want %s from the cache", tc.name, id, cached, want)
		}
	}
	// Files changed just before the hash are not vouched for.
	racyWindow = time.Hour
	mkTree(t, dir, "a=7")
	want, _ = Hash(dir, WriteOptions{})
	for range 2 {
		if id, cached := hash(); id != want || cached {
			t.Errorf("racy tree: %s cached=%v, want %s from the files", id, cached, want)
		}
	}
	// A damaged cache file, or no cache: hashed again.
	racyWindow = 0
	hash()
	files, _ := filepath.Glob(filepath.Join(cache, "*.json"))
	if len(files) != 1 {
		t.Fatalf("cache files: %v", files)
	}
	os.WriteFile(files[0], []byte("{"), 0o600)
	if id, cached := hash(); id != want || cached {
		t.Errorf("damaged cache: %s cached=%v", id, cached)
	}
	if id, cached, err := CachedHash(dir, "", WriteOptions{}); err != nil || id != want || cached {
		t.Errorf("no cache: %s %v %v", id, cached, err)
	}
}
