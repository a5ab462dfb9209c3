package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Local runs the agent on this machine: the same commands as over SSH,
// without the network, for demos, tests and single-machine setups.
type Local struct {
	argv0 []string // the agent command, e.g. ["/usr/local/bin/jeagent"] or ["sudo", "-n", "jeagent"]
	root  string
}

// NewLocal finds the agent for t: t.Agent, else jeagent on PATH, else a
// jeagent beside the running executable.
func NewLocal(t Target) (*Local, error) {
	root := t.Root
	if root != "" {
		abs, err := filepath.Abs(root)
		if err != nil {
			return nil, fmt.Errorf("agent root %s: %w", root, err)
		}
		root = abs
	}
	if f := strings.Fields(t.Agent); len(f) > 0 {
		if _, err := exec.LookPath(f[0]); err != nil {
			return nil, fmt.Errorf("agent command %q: %w: fix agent = ... in the config or --agent", t.Agent, err)
		}
		return &Local{argv0: f, root: root}, nil
	}
	if p, err := exec.LookPath("jeagent"); err == nil {
		return &Local{argv0: []string{p}, root: root}, nil
	}
	self, err := os.Executable()
	if err == nil {
		p := filepath.Join(filepath.Dir(self), "jeagent")
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return &Local{argv0: []string{p}, root: root}, nil
		}
	}
	return nil, errors.New(`jeagent not found: it is not on PATH nor beside jepush; install it, or set agent = "/path/to/jeagent" in the environment's table of jecloud.toml (or pass --agent)`)
}

// Name returns "local".
func (l *Local) Name() string { return "local" }

// Close does nothing.
func (l *Local) Close() error { return nil }

// Run runs the agent and waits for it. When ctx ends the agent is sent
// SIGTERM, and Run returns within a second even if something the agent
// started still holds its output open.
func (l *Local) Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	args := append(append([]string(nil), l.argv0[1:]...), agentArgs(l.root, argv)...)
	cmd := exec.CommandContext(ctx, l.argv0[0], args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.Cancel = func() error { return terminate(cmd.Process) }
	cmd.WaitDelay = time.Second
	detach(cmd)
	err := cmd.Run()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return &ExitError{Target: "local", Argv: argv, Code: ee.ExitCode()}
	}
	if err != nil {
		return fmt.Errorf("local: run %s: %w", l.argv0[0], err)
	}
	return nil
}
