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
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/coreos/go-systemd/v22/util"
	"github.com/jecloud/jecloud/internal/state"
)

// Unit is the systemd service that runs one roll-forward.
const Unit = "jeagent-rollforward.service"

// Rollforward starts a roll-forward of the tree at root. It returns how it
// started it, for the log.
func Rollforward(ctx context.Context, root string) (string, error) {
	if root == state.DefaultRoot && util.IsRunningSystemd() {
		if err := startUnit(ctx); err == nil {
			return "started " + Unit, nil
		}
		// The unit is not installed (`jeagent init` not run yet): run it ourselves.
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer null.Close()
	cmd := exec.Command(exe, "--root", root, "rollforward", "--quiet")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s rollforward: %w", exe, err)
	}
	go cmd.Wait() // reap it if we are still here when it ends
	return fmt.Sprintf("started roll-forward (pid %d)", cmd.Process.Pid), nil
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
