// Package launch starts a roll-forward run that outlives the command that
// asked for it: under systemd it starts jeagent-rollforward.service (so a
// dropped SSH session stops nothing), elsewhere (a container, a test, a
// demo) it starts `jeagent rollforward` in a session of its own.
package launch

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/coreos/go-systemd/v22/util"
	"github.com/jecloud/jecloud/internal/state"
)

// Unit is the systemd service that runs one roll-forward.
const Unit = "jeagent-rollforward.service"

// Run is a roll-forward that Rollforward started.
type Run struct {
	How  string        // how it was started, for the log
	done chan struct{} // closed when the process ends; nil when systemd runs it
}

// Wait waits up to d for the run to end, if this process started it: a
// command that followed a deployment to its end then leaves no run of its
// own behind, unless that run went on to other work. A unit's run belongs
// to systemd, and Wait returns at once.
func (r *Run) Wait(d time.Duration) {
	if r == nil || r.done == nil {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.done:
	case <-t.C:
	}
}

// Rollforward starts a roll-forward of the tree at root.
func Rollforward(ctx context.Context, root string) (*Run, error) {
	if root == state.DefaultRoot && util.IsRunningSystemd() {
		if err := startUnit(ctx); err == nil {
			return &Run{How: "started " + Unit}, nil
		}
		// The unit is not installed (`jeagent init` not run yet): run it ourselves.
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer null.Close()
	cmd := exec.Command(exe, "--root", root, "rollforward", "--quiet")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.Env = runEnv(os.Environ())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s rollforward: %w", exe, err)
	}
	r := &Run{How: fmt.Sprintf("started roll-forward (pid %d)", cmd.Process.Pid), done: make(chan struct{})}
	go func() { // reap it if we are still here when it ends
		cmd.Wait()
		close(r.done)
	}()
	return r, nil
}

// runEnv is the environment of a roll-forward started here: the run is the
// one the timer would start, root's own, whoever asked for it. What sudo,
// doas or pkexec recorded of a caller who is not root is left out (else
// the run would be refused as that caller's: `jeagent rollforward` is for
// root only), and with it every JECLOUD_ variable, which such a caller may
// not set for root (the state root is passed as --root, checked).
func runEnv(env []string) []string {
	onBehalf := false
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SUDO_") || k == "DOAS_USER" || k == "PKEXEC_UID" {
			onBehalf = true
			continue
		}
		out = append(out, kv)
	}
	if !onBehalf {
		return env
	}
	return slices.DeleteFunc(out, func(kv string) bool { return strings.HasPrefix(kv, "JECLOUD_") })
}

func startUnit(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch := make(chan string, 1)
	if _, err := conn.StartUnitContext(ctx, Unit, "replace", ch); err != nil {
		return err
	}
	return nil // do not wait for the oneshot to finish: the caller follows the state
}
