//go:build unix

package remote

import (
	"os"
	"os/exec"
	"syscall"
)

// detach puts the agent in its own process group, so that Ctrl-C in the
// terminal reaches jepush only, not the agent nor what the agent started
// (a deploy goes on when jepush stops watching it).
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// terminate asks the agent to stop with SIGTERM. Only the agent: what it
// started (a roll-forward) is not ours to stop.
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
