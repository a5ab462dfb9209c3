package push

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/jecloud/jecloud/internal/remote"
)

// Run runs argv in the environment's live release on its first server
// (`jeagent run APP ENV -- ARGV...`) and returns the command's exit status.
// With tty (a terminal: jepush's stdin and stdout), the command runs on a
// terminal of the server's (raw mode here, window size changes followed);
// otherwise stdin, stdout and stderr are passed through as plain streams.
func (c *Client) Run(ctx context.Context, argv []string, tty *os.File, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(c.Targets) == 0 {
		return 0, fmt.Errorf("environment %s has no server to run on", c.Env)
	}
	t := c.Targets[0]
	if len(c.Targets) > 1 {
		c.say("running on %s (the first of %d servers)", t.Name(), len(c.Targets))
	}
	r, err := c.open(ctx, t)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	args := append([]string{"run", c.App, c.Env, "--"}, argv...)
	if term, ok := r.(remote.Terminal); ok && tty != nil {
		err = term.RunTerminal(ctx, args, tty)
	} else {
		err = r.Run(ctx, args, stdin, stdout, stderr)
	}
	if code, ok := remote.ExitCode(err); ok {
		return code, nil
	}
	if err != nil && ctx.Err() != nil {
		return 0, ErrInterrupted
	}
	return 0, err
}
