// Package tick is what the systemd timer runs every minute: jeagent-tick
// plans like `jeagent rollforward` and, when there is nothing to do, ends
// at once. jeagent links the AWS SDK, the MongoDB driver and the hooks,
// whose start-up alone costs more than a whole idle tick should; this
// binary links the planner (package plan) only. When there is work,
// something to report, or the server follows a global state on S3, it runs
// `jeagent rollforward` in its place (exec: same process, same unit, same
// logs).
package tick

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/jecloud/jecloud/internal/plan"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/jecloud/jecloud/internal/version"
)

// Main runs jeagent-tick with args (os.Args) and returns its exit status.
// getenv (os.Getenv) gives JECLOUD_ROOT and PATH: agent/tick's main is
// the one place that reads the environment.
func Main(args []string, getenv func(string) string, stderr io.Writer) int {
	fs := flag.NewFlagSet(filepath.Base(args[0]), flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", envOr(getenv, "JECLOUD_ROOT", state.DefaultRoot), "the agent's state `DIR`")
	agent := fs.String("agent", "", "the full jeagent to run when there is work (default: jeagent beside this program, else on the PATH)")
	showVersion := fs.Bool("version", false, "print the version (module version, commit, protocol) and exit")
	versionJSON := fs.Bool("json", false, "with --version: print it as JSON")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [--root DIR] [--agent PATH] | --version [--json]\n\n"+
			"The roll-forward the systemd timer starts (jeagent-rollforward.service). It plans like\n"+
			"`jeagent rollforward` and ends at once when there is nothing to do, without loading the\n"+
			"full agent; otherwise it runs `jeagent rollforward` in its place. See docs/agent.md.\n\n", fs.Name())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		version.Print(os.Stdout, "jeagent-tick", *versionJSON)
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s takes no arguments (got %q); see --help\n", fs.Name(), fs.Args())
		return 2
	}
	if Idle(state.Layout{Root: *root}) {
		return 0
	}
	exe := *agent
	if exe == "" {
		exe = fullAgent(getenv("PATH"))
	}
	argv := []string{exe, "--root", *root, "rollforward"}
	err := syscall.Exec(exe, argv, os.Environ())
	fmt.Fprintf(stderr, "%s: run %s: %v: install jeagent beside %s or give --agent PATH\n", fs.Name(), exe, err, fs.Name())
	return 1
}

// Idle reports whether a roll-forward run under l would have nothing to
// do and nothing to say: no step planned, no problem to report, and no
// global state to follow (which needs S3 on every run).
func Idle(l state.Layout) bool {
	p, err := plan.Make(l, state.Now(), false)
	if err != nil || len(p.Steps) > 0 || len(p.Problems) > 0 {
		return false // a server.json that does not parse is one of the problems
	}
	_, global := p.Server.Extra["global"]
	return !global
}

// fullAgent is jeagent beside this program, else "jeagent" on path (PATH).
func fullAgent(path string) string {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "jeagent")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := lookPath(path, "jeagent"); err == nil {
		return p
	}
	return "/usr/local/bin/jeagent"
}

// lookPath is exec.LookPath in path without importing os/exec's init.
func lookPath(path, name string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", os.ErrNotExist
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
