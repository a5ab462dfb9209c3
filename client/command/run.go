package command

import (
	"os"
	"slices"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a one-off command in ENV's live release (like heroku run)",
		ArgsUsage: "ENV -- CMD [ARGS...]",
		Description: "Runs CMD with ARGS on ENV's server (the first, if it has several) in the live release,\n" +
			"as the app's user, with its config vars, its services' variables (REDIS_URL, ...), PORT and\n" +
			"the sandbox and limits of its web processes, in a transient systemd unit (logged and\n" +
			"accounted; `jepush ps ENV` lists it while it runs): `jeagent run APP ENV -- CMD ARGS...`\n" +
			"over SSH. ARGS reach CMD exactly as given (no shell on the server reads them; write\n" +
			"sh -c '...' for one). Put -- before CMD so that its own flags are not taken for jepush's.\n" +
			"On a terminal the command is interactive: it gets a terminal of its own, window size\n" +
			"changes and Ctrl-C reach it. Otherwise stdin, stdout and stderr pass through as plain\n" +
			"streams; Ctrl-C then stops jepush, and the agent stops the command when it sees jepush gone.\n" +
			"jepush exits with CMD's exit status.\n\n" +
			"Examples:\n" +
			"  jepush run prod -- npm run migrate\n" +
			"  jepush run prod -- node                      # a REPL\n" +
			"  echo 'select 1' | jepush run prod -- ./bin/query\n" +
			"  jepush run prod -- sh -c 'echo $PORT'",
		Flags: append(targetFlags(), dirFlag()),
		Action: func(c *cli.Context) error {
			a := c.Args().Slice()
			if i := slices.Index(a, "--"); i >= 0 {
				a = append(a[:i:i], a[i+1:]...)
			}
			if len(a) < 2 {
				return usage("run expects ENV -- CMD [ARGS...], got %d argument(s) (see: jepush run --help)", len(a))
			}
			cl, err := newClient(c, c.String("dir"), a[0])
			if err != nil {
				return err
			}
			var tty *os.File
			if term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd())) {
				tty = os.Stdin
			}
			code, err := cl.Run(c.Context, a[1:], tty, os.Stdin, c.App.Writer, c.App.ErrWriter)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitStatus(code)
			}
			return nil
		},
	}
}
