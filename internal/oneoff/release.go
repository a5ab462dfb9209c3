package oneoff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jecloud/jecloud/internal/lines"
)

// TailLines is how many of the release command's last lines a failure's
// reason quotes.
const TailLines = 10

// ReleaseError is a release command that failed: it exited non-zero, was
// killed, or ran out of time. Its message quotes its last lines.
type ReleaseError struct {
	Command  string
	Status   int           // the exit status (-1 when it did not exit by itself)
	TimedOut time.Duration // the limit it reached, if it did
	Tail     []string      // its last lines of output
}

func (e *ReleaseError) Error() string {
	var msg string
	if e.TimedOut > 0 {
		msg = fmt.Sprintf("the release command %q ran longer than its limit of %s and was stopped ([grace] release in jecloud.toml sets the limit)", e.Command, e.TimedOut)
	} else {
		msg = fmt.Sprintf("the release command %q failed with exit status %d", e.Command, e.Status)
	}
	if len(e.Tail) == 0 {
		return msg + " (it printed nothing)"
	}
	return msg + "; its last lines:\n" + strings.Join(e.Tail, "\n")
}

// RunRelease runs the release command of the release in p.ReleaseDir
// (`/bin/sh -c COMMAND`, as the Procfile's process types run) in the
// transient unit jecloud-APP_ENV_release.service, with no input, streaming
// its output line by line to log, and stops it after timeout (systemd's
// RuntimeMaxSec=, so the limit holds even if the agent dies). A release
// unit left running by an agent killed before (the deployment is then
// still before its switch) is stopped first: the command runs again from
// the start, which is why it must be idempotent (docs/release.md).
func RunRelease(ctx context.Context, p Process, command string, timeout time.Duration, log io.Writer) error {
	name := Unit(p.App, p.Env, "release")
	stopUnit(name)
	secs := strconv.FormatInt(int64(timeout/time.Second), 10)
	args, err := p.SystemdRun(name, Pipe, []string{"/bin/sh", "-c", command}, "RuntimeMaxSec="+secs, "KillMode=mixed", "TimeoutStopSec=30")
	if err != nil {
		return err
	}
	tail := &tailWriter{n: TailLines, out: log}
	w := &lines.Writer{Line: tail.line}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = w, w
	// A roll-forward stopped (SIGTERM) stops the command too, not only
	// systemd-run, which would leave the unit running.
	cmd.Cancel = func() error {
		stopUnit(name)
		return cmd.Process.Kill()
	}
	cmd.WaitDelay = 40 * time.Second
	start := time.Now()
	err = cmd.Run()
	w.Flush()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("systemd-run: %w", err)
	}
	re := &ReleaseError{Command: command, Status: ee.ExitCode(), Tail: tail.lines()}
	if time.Since(start) >= timeout {
		re.TimedOut = timeout
	}
	return re
}

// stopUnit stops a transient unit if it is there (a failed one is
// collected by systemd-run's --collect).
func stopUnit(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	exec.CommandContext(ctx, "systemctl", "stop", "--quiet", name).Run()
}

// tailWriter passes lines on to out and keeps the last n.
type tailWriter struct {
	mu   sync.Mutex
	n    int
	out  io.Writer
	last []string
}

func (t *tailWriter) line(s string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.out != nil {
		fmt.Fprintln(t.out, s)
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	t.last = append(t.last, s)
	if len(t.last) > t.n {
		t.last = t.last[len(t.last)-t.n:]
	}
	return nil
}

func (t *tailWriter) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.last...)
}
