package appuser

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestAdoptStaysInside: a tree that another user owned is given to the
// new user, and a symbolic link in it (to a directory outside, as the old
// user's process could plant) is not followed: what it points at keeps
// its owner.
func TestAdoptStaysInside(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	base := t.TempDir()
	outside := filepath.Join(base, "etc")
	os.MkdirAll(outside, 0o755)
	os.WriteFile(filepath.Join(outside, "shadow"), []byte("x"), 0o600)
	data := filepath.Join(base, "data")
	os.MkdirAll(filepath.Join(data, "sub", "deeper"), 0o750)
	os.WriteFile(filepath.Join(data, "sub", "deeper", "f"), []byte("y"), 0o640)
	if err := os.Symlink(outside, filepath.Join(data, "sub", "link")); err != nil {
		t.Fatal(err)
	}
	filepath.Walk(data, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, 1234, 1234) })
	if err := Adopt(data, 4321, 4321); err != nil {
		t.Fatal(err)
	}
	owner := func(p string) int {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		return int(st.Uid)
	}
	for _, p := range []string{data, filepath.Join(data, "sub"), filepath.Join(data, "sub", "deeper", "f"), filepath.Join(data, "sub", "link")} {
		if got := owner(p); got != 4321 {
			t.Errorf("%s: owner %d, want 4321", p, got)
		}
	}
	for _, p := range []string{outside, filepath.Join(outside, "shadow")} {
		if got := owner(p); got != 0 {
			t.Errorf("%s, outside the tree: owner %d, want root's", p, got)
		}
	}
	// data itself a symbolic link: refused, not followed.
	link := filepath.Join(base, "data2")
	os.Symlink(outside, link)
	if err := Adopt(link, 4321, 4321); err == nil || owner(outside) != 0 {
		t.Errorf("Adopt of a symbolic link: %v, owner of its target %d", err, owner(outside))
	}
}
