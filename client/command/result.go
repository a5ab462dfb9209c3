package command

import (
	"errors"

	"github.com/urfave/cli/v2"

	"github.com/jecloud/jecloud/internal/push"
)

func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print one JSON object for scripts (progress goes to stderr)"}
}

// resultShape is what --json prints after a push or a rollback.
const resultShape = `{"app", "env", "ok", "error", "hosts": [{"host", "version", "live", "state", "reason", "urls", "error"}]}` +
	"\n(state: live, failed, deploying, destroying, not deployed or unknown)"

// withResult runs op (a push or a rollback) with the agents' output on
// stderr, then prints one JSON object on stdout (push.Client.PrintResults)
// with where each server stands, whether op failed or not: a script reads
// the outcome there, and the exit status is op's.
func withResult(c *cli.Context, cl *push.Client, version func() string, op func() error) error {
	out := cl.Stdout
	cl.Stdout = cl.Stderr
	err := op()
	cl.Stdout = out
	if perr := cl.PrintResults(c.Context, version(), err); perr != nil {
		return errors.Join(err, perr)
	}
	return err
}
