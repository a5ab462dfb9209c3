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
