//go:build linux

package hook

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTimeoutKillsTheWholeHook: a hook that hangs, with a child of its own
// that holds its stdout, is stopped at its timeout: the whole process group
// is killed, Run returns at once (not after WaitDelay) with "timed out",
// and no process of the hook is left.
func TestTimeoutKillsTheWholeHook(t *testing.T) {
	for _, tc := range []struct {
		name, body string
	}{
		{"sleeps", "echo $$ > PIDS; exec sleep 30\n"},
		{"child holds stdout", "sleep 30 & echo $! > PIDS; echo $$ >> PIDS; wait\n"},
		{"ignores SIGTERM", "trap '' TERM; sleep 30 & echo $! > PIDS; echo $$ >> PIDS; wait\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pids := filepath.Join(dir, "pids")
			h := Exec{Path: script(t, dir, "10-hang", strings.ReplaceAll(tc.body, "PIDS", pids)), Timeout: 300 * time.Millisecond}
			start := time.Now()
			_, err := h.Run(context.Background(), Request{Phase: Prepare, App: "web", Env: "prod"}, &strings.Builder{})
			took := time.Since(start)
			var he *Error
			if !errors.As(err, &he) || he.Reason != "timed out after 300ms" || he.Phase != Prepare {
				t.Fatalf("err = %v, want a hook error \"timed out after 300ms\"", err)
			}
			if took > 3*time.Second {
				t.Errorf("Run returned after %v; the timeout is 300ms", took)
			}
			b, err := os.ReadFile(pids)
			if err != nil {
				t.Fatal(err)
			}
			fields := strings.Fields(string(b))
			if len(fields) == 0 {
				t.Fatal("the hook wrote no pid")
			}
			for _, f := range fields {
				pid, _ := strconv.Atoi(f)
				if alive(pid) {
					syscall.Kill(pid, syscall.SIGKILL)
					t.Errorf("process %d of the hook outlived its timeout", pid)
				}
			}
		})
	}
}

// alive reports whether pid runs (a zombie does not count), waiting a
// little for the kernel to finish a kill.
func alive(pid int) bool {
	for try := 0; try < 50; try++ {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return false
		}
		// The state follows the command name in parentheses.
		s := string(b)
		if end := strings.LastIndexByte(s, ')'); end >= 0 && end+2 < len(s) && s[end+2] == 'Z' {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// TestKilledHookReason: a hook killed by a signal fails with a reason that
// says so, after its own last words if it had any.
func TestKilledHookReason(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"silent", "kill -9 $$\n", "prepare hook silent failed: signal: killed"},
		{"last words", "echo 'npm ci: building' >&2; kill -9 $$\n", "prepare hook last-words failed: npm ci: building (signal: killed)"},
		{"message", `echo '{"message":"out of memory"}'; kill -9 $$` + "\n", "prepare hook message failed: out of memory (signal: killed)"},
		{"terminated", "kill -TERM $$\n", "prepare hook terminated failed: signal: terminated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := Exec{Path: script(t, t.TempDir(), strings.ReplaceAll(tc.name, " ", "-"), tc.body)}
			_, err := h.Run(context.Background(), Request{Phase: Prepare}, &strings.Builder{})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
