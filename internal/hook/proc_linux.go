package hook

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the hook in its own process group and kills it if the
// agent dies (kill -9): no hook outlives the run that started it. A timeout
// kills the whole group.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
