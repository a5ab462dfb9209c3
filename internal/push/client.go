// Package push is what jepush does with an app's servers: bundle and
// upload a version, deploy it and watch it go live, roll back, and show
// status and logs. Every step runs a jeagent command through a
// remote.Runner, so SSH hosts and the local target take the same path.
package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/jecloud/jecloud/internal/globalstate"
	"github.com/jecloud/jecloud/internal/lines"
	"github.com/jecloud/jecloud/internal/placement"
	"github.com/jecloud/jecloud/internal/remote"
)

// Client works on one environment of one app.
type Client struct {
	App     string
	Env     string
	Targets []remote.Target
	// Open connects to a target (nil: remote.Open with SSH).
	Open func(ctx context.Context, t remote.Target) (remote.Runner, error)
	// SSH is the user's SSH setup, for Open's default.
	SSH remote.SSHOptions
	// TreeCache is where the version IDs of trees pushed from this machine
	// are remembered (bundle.CachedHash); "": every push reads every file.
	TreeCache string
	// Stdout gets the agents' output, each line prefixed with its host;
	// Stderr gets jepush's own messages, progress and the agents' stderr.
	Stdout, Stderr io.Writer
	// Interactive draws progress bars (Stderr is a terminal).
	Interactive bool
	// Color allows colour in messages.
	Color bool
	// By is who pushes (USER@HOST of the laptop or CI job), recorded by
	// the agent with each deployment (`jepush releases`).
	By string
	// StatusCmd is the command that shows this environment's status, for
	// hints ("jepush status prod --dir ./shop").
	StatusCmd string
	// Requested, if set, records a push's version before it is sent (the
	// global state of an EC2 environment).
	Requested func(ctx context.Context, id string) error
	// Rotation, if set, is the load balancer in front of the web servers:
	// each is taken out of it while it switches (rotation.go).
	Rotation Rotation
	// Global, if set, sends pushes through the global state on S3 (the
	// servers fetch the version themselves) instead of to each target.
	Global *Global
	// State is the environment's global state on S3, for an EC2
	// environment (either way of deploying): its routing (domains,
	// maintenance) is kept there for every server, and a push ends by
	// printing where the environment is served.
	State *globalstate.Store
	// Roles places process types on server roles (jecloud.toml's [roles]);
	// each target's Role says which servers run which types.
	Roles placement.Map
	// EnvRoles are roles that have servers in the environment besides
	// those of Targets (the config's role hosts, when --host pushes to some).
	EnvRoles []string

	outMu sync.Mutex // one line at a time on the terminal
}

// ErrInterrupted is wrapped by the error of an operation stopped by its
// context (Ctrl-C). What was started on a server goes on there.
var ErrInterrupted = errors.New("interrupted")

func (c *Client) open(ctx context.Context, t remote.Target) (remote.Runner, error) {
	if c.Open != nil {
		return c.Open(ctx, t)
	}
	return remote.Open(ctx, t, c.SSH)
}

// say writes one of jepush's own lines to Stderr.
func (c *Client) say(format string, args ...any) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	fmt.Fprintf(c.Stderr, format+"\n", args...)
}

// style colours s when colour is allowed: "ok" green, "bad" red, "host" bold.
func (c *Client) style(kind, s string) string {
	if !c.Color {
		return s
	}
	code := map[string]string{"ok": "32", "bad": "31;1", "host": "1"}[kind]
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// streams returns writers for an agent command's stdout and stderr that
// prefix each line with the host's name, and a tail of its stderr.
func (c *Client) streams(host string, prefix bool) (stdout, stderr *lines.Writer, t *tail) {
	p := ""
	if prefix {
		p = c.style("host", host) + ": "
	}
	t = &tail{}
	return c.prefixed(c.Stdout, p), c.prefixed(c.Stderr, p), t
}

// prefixed returns a writer that writes each line it is given to w with
// prefix in front, a whole line at a time under outMu, so that lines from
// stdout and stderr do not mix mid-line.
func (c *Client) prefixed(w io.Writer, prefix string) *lines.Writer {
	return &lines.Writer{Line: func(line string) error {
		c.outMu.Lock()
		defer c.outMu.Unlock()
		// A bare \r (progress drawn by a hook) would overwrite the prefix;
		// any other control character a server sends is shown, escaped,
		// never obeyed (lines.Printable).
		_, err := io.WriteString(w, prefix+lines.Printable(strings.ReplaceAll(line, "\r", ""))+"\n")
		return err
	}}
}

// run runs an agent command on r with its output prefixed by the host
// name, and returns its error with the agent's explanation.
func (c *Client) run(ctx context.Context, r remote.Runner, argv []string, stdin io.Reader, prefix bool) (*tail, error) {
	out, errw, t := c.streams(r.Name(), prefix)
	err := r.Run(ctx, argv, stdin, out, io.MultiWriter(errw, t))
	out.Flush()
	errw.Flush()
	return t, explain(r.Name(), argv, err, t)
}

// AgentError is an agent command that failed, with what the agent said.
type AgentError struct {
	Host string
	Msg  string // the agent's last stderr line, or a hint
	Err  error  // the *remote.ExitError
}

func (e *AgentError) Error() string { return e.Host + ": " + e.Msg }
func (e *AgentError) Unwrap() error { return e.Err }

// explain turns a non-zero exit into an *AgentError saying why.
func explain(host string, argv []string, err error, t *tail) error {
	code, ok := remote.ExitCode(err)
	if !ok {
		return err
	}
	all, last := t.All(), t.Last()
	ae := &AgentError{Host: host, Msg: last, Err: err}
	switch {
	case strings.Contains(all, "sudo: a password is required") || strings.Contains(all, "sudo: a terminal is required"):
		ae.Msg = "sudo asked for a password: let the SSH user run jeagent without one (sudoers: USER ALL=(root) NOPASSWD: /usr/local/bin/jeagent), log in as root, or set agent = \"...\" for this environment in jecloud.toml"
	case code == 127:
		ae.Msg = fmt.Sprintf("jeagent is not installed there, or not on the PATH of a non-interactive login (%s): install it, or set agent = \"/path/to/jeagent\" for this environment in jecloud.toml", last)
	case last == "":
		ae.Msg = fmt.Sprintf("jeagent %s exited with status %d and said nothing", argv[0], code)
	}
	return ae
}

// names returns the names of targets, for messages.
func names(ts []remote.Target) string {
	n := make([]string, len(ts))
	for i, t := range ts {
		n[i] = t.Name()
	}
	return strings.Join(n, ", ")
}
