// Package remote runs jeagent commands where an app is deployed: on a server
// over SSH (golang.org/x/crypto/ssh, honouring ~/.ssh/config, the SSH agent
// and known_hosts, always strictly) or on this machine. Both are a Runner, so
// the push workflow is the same for either.
package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Runner runs jeagent commands on one target.
type Runner interface {
	// Run runs the agent with arguments argv (without the program: the
	// runner puts the agent command and --root in front) and waits for it.
	// A non-zero exit is an *ExitError; a lost connection is an error
	// wrapping ErrConnectionLost. When ctx ends, the command is asked to
	// stop and Run returns ctx's error.
	Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error
	// Close releases the connection.
	Close() error
	// Name is the target's name for messages: the host as the user wrote
	// it, or "local".
	Name() string
}

// Target says where one agent is.
type Target struct {
	// Dest is an SSH destination: "web1" (a name or ~/.ssh/config alias),
	// "user@host", "user@host:port", "ssh://user@host:port". Empty when Local.
	Dest string
	// Local runs the agent on this machine.
	Local bool
	// Root is passed to the agent as --root when not empty.
	Root string
	// Agent is the command that runs jeagent. Empty: "jeagent" (over SSH
	// as a user other than root: "sudo -n jeagent"; locally: jeagent on
	// PATH, else beside this executable).
	Agent string
	// Role is the server's role in its environment ("" is web): which
	// process types run there (internal/placement).
	Role string
}

// Name returns the target's name for messages.
func (t Target) Name() string {
	if t.Local {
		return "local"
	}
	return t.Dest
}

// Open connects to t: dials SSH (checking the host key and logging in) or
// finds the local agent.
func Open(ctx context.Context, t Target, o SSHOptions) (Runner, error) {
	if t.Local {
		return NewLocal(t)
	}
	return DialSSH(ctx, t, o)
}

// ErrConnectionLost is wrapped by errors reporting a dropped connection.
var ErrConnectionLost = errors.New("connection lost")

// ExitError reports that the agent ran and exited with a non-zero status.
type ExitError struct {
	Target string
	Argv   []string
	Code   int
}

func (e *ExitError) Error() string {
	cmd := "jeagent"
	if len(e.Argv) > 0 {
		cmd += " " + e.Argv[0]
	}
	return fmt.Sprintf("%s: %s exited with status %d", e.Target, cmd, e.Code)
}

// ExitCode returns the agent's exit status if err is an *ExitError.
func ExitCode(err error) (int, bool) {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code, true
	}
	return 0, false
}

// agentArgs returns argv with --root in front when root is set.
func agentArgs(root string, argv []string) []string {
	if root == "" {
		return argv
	}
	return append([]string{"--root", root}, argv...)
}
