// Package oom undoes, for the programs the agent starts, the protection
// from the kernel's OOM killer that the agent's unit gives the agent
// (OOMScoreAdjust=-500 in jeagent-rollforward.service): a child inherits
// its parent's oom_score_adj, and a build (npm ci) or a hook that eats
// memory must be as likely a pick as an app, not protected with the agent.
package oom

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
)

// adjPath is where a process's oom_score_adj is; tests replace it.
var adjPath = func(pid string) string { return "/proc/" + pid + "/oom_score_adj" }

// Run starts cmd, sets its oom_score_adj to 0 when the agent's own is
// below 0 (raising it needs no privilege), and waits for it. Its own
// children are started after that and inherit the 0. The few
// microseconds between the start and the write are the only time the
// program runs protected.
func Run(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	Unprotect(cmd.Process.Pid)
	return cmd.Wait()
}

// Unprotect sets pid's oom_score_adj to 0 if this process's is below 0.
// Errors are ignored: the program may be gone already, and a kernel
// without the file has no adjustment to undo.
func Unprotect(pid int) {
	own, err := os.ReadFile(adjPath("self"))
	if err != nil {
		return
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(own)))
	if err != nil || n >= 0 {
		return
	}
	os.WriteFile(adjPath(strconv.Itoa(pid)), []byte("0\n"), 0)
}
