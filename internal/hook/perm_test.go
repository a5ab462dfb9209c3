package hook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDirRefusesHooksOthersMayChange: the agent runs hooks as root, so a
// hook or a hooks.d that group or others may write (or a hook owned by
// another user) is refused with an error naming it and what to do.
func TestDirRefusesHooksOthersMayChange(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dirMode  os.FileMode
		hookMode os.FileMode
		chown    int // uid to give the hook, -1: leave it
		want     string
	}{
		{name: "safe", dirMode: 0o755, hookMode: 0o755, chown: -1},
		{name: "root only", dirMode: 0o700, hookMode: 0o700, chown: -1},
		{name: "hook world-writable", dirMode: 0o755, hookMode: 0o777, chown: -1, want: "is writable by group or others (mode 0777)"},
		{name: "hook group-writable", dirMode: 0o755, hookMode: 0o775, chown: -1, want: "chmod go-w"},
		{name: "dir world-writable", dirMode: 0o777, hookMode: 0o755, chown: -1, want: "hooks.d is writable by group or others (mode 0777)"},
		{name: "dir sticky world-writable", dirMode: 0o1777, hookMode: 0o755, chown: -1, want: "is writable by group or others"},
		{name: "hook owned by another user", dirMode: 0o755, hookMode: 0o755, chown: 65534, want: "belongs to uid 65534"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.chown >= 0 && os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			dir := filepath.Join(t.TempDir(), "hooks.d")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			p := script(t, dir, "10-hook", "exit 0\n")
			if err := os.Chmod(p, tc.hookMode); err != nil {
				t.Fatal(err)
			}
			if tc.chown >= 0 {
				if err := os.Chown(p, tc.chown, -1); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(dir, tc.dirMode); err != nil {
				t.Fatal(err)
			}
			hooks, err := Dir(dir, time.Minute)
			if tc.want == "" {
				if err != nil || len(hooks) != 1 || hooks[0].Name() != "10-hook" {
					t.Fatalf("Dir = %v, %v; want the hook", hooks, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || hooks != nil {
				t.Fatalf("Dir = %v, %v; want an error containing %q", hooks, err, tc.want)
			}
		})
	}
}

// TestDirRefusesPathsOthersControl: not only the hook and hooks.d, every
// component of the path from "/" down is checked with lstat: a directory
// on the way that another user owns or may write, or a symbolic link (to
// the hooks directory, or as a hook), lets someone other than root choose
// what the agent runs as root (issue #17: `sudo jeagent` with a hooks
// directory reached through a path component the deploy user owns).
func TestDirRefusesPathsOthersControl(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, base string) string // returns the hooks dir to list
		root  bool                                   // needs root (chown)
		want  string
	}{
		{name: "parent owned by another user", root: true, want: "belongs to uid 65534",
			setup: func(t *testing.T, base string) string {
				mid := filepath.Join(base, "home")
				mkdir(t, mid, 0o755)
				dir := hooksDir(t, mid)
				if err := os.Chown(mid, 65534, 65534); err != nil {
					t.Fatal(err)
				}
				return dir
			}},
		{name: "parent writable by others", want: "is writable by group or others (mode 0777)",
			setup: func(t *testing.T, base string) string {
				mid := filepath.Join(base, "shared")
				mkdir(t, mid, 0o755)
				dir := hooksDir(t, mid)
				if err := os.Chmod(mid, 0o777); err != nil {
					t.Fatal(err)
				}
				return dir
			}},
		{name: "hooks dir through a symlink", want: "is a symbolic link",
			setup: func(t *testing.T, base string) string {
				real := hooksDir(t, base)
				link := filepath.Join(base, "link")
				if err := os.Symlink(real, link); err != nil {
					t.Fatal(err)
				}
				return link
			}},
		{name: "parent is a symlink", want: "is a symbolic link",
			setup: func(t *testing.T, base string) string {
				real := filepath.Join(base, "real")
				mkdir(t, real, 0o755)
				hooksDir(t, real)
				if err := os.Symlink(real, filepath.Join(base, "via")); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(base, "via", "hooks.d")
			}},
		{name: "hook is a symlink", want: "10-hook is a symbolic link",
			setup: func(t *testing.T, base string) string {
				dir := filepath.Join(base, "hooks.d")
				mkdir(t, dir, 0o755)
				target := script(t, base, "elsewhere", "exit 0\n")
				if err := os.Symlink(target, filepath.Join(dir, "10-hook")); err != nil {
					t.Fatal(err)
				}
				return dir
			}},
		{name: "safe path", setup: func(t *testing.T, base string) string { return hooksDir(t, base) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			dir := tc.setup(t, t.TempDir())
			hooks, err := Dir(dir, time.Minute)
			if tc.want == "" {
				if err != nil || len(hooks) != 1 {
					t.Fatalf("Dir = %v, %v; want the hook", hooks, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || hooks != nil {
				t.Fatalf("Dir = %v, %v; want an error containing %q", hooks, err, tc.want)
			}
		})
	}
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}

// hooksDir makes parent/hooks.d with one executable hook, 10-hook.
func hooksDir(t *testing.T, parent string) string {
	t.Helper()
	dir := filepath.Join(parent, "hooks.d")
	mkdir(t, dir, 0o755)
	script(t, dir, "10-hook", "exit 0\n")
	return dir
}
