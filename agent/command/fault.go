package command

import (
	"os"
	"strings"
	"syscall"
)

// faultFromEnv reads JECLOUD_FAULT, a testing knob: a comma-separated list
// of fault points (see rollforward.Engine.Fault and docs/reliability.md) at
// which the agent kills itself with SIGKILL, as a crash or power loss would.
func faultFromEnv() func(string) {
	spec := os.Getenv("JECLOUD_FAULT")
	if spec == "" || restricted {
		return nil
	}
	points := map[string]bool{}
	for _, p := range strings.Split(spec, ",") {
		points[strings.TrimSpace(p)] = true
	}
	return func(point string) {
		if points[point] {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}
