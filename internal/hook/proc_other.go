//go:build !linux

package hook

import "os/exec"

func setProcAttr(cmd *exec.Cmd) {}
