package command

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/jecloud/jecloud/internal/oneoff"
	"github.com/jecloud/jecloud/internal/state"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a one-off command in the live release, as the app's processes run",
		ArgsUsage: "APP ENV -- CMD [ARGS...]",
		Description: "Like `heroku run`: runs CMD with ARGS in APP ENV's live release (versions/current), as the\n" +
			"app's user, with its config vars, its services' variables (REDIS_URL, ...), PORT (a free\n" +
			"port), and the sandbox and limits of its web processes, in a transient systemd unit\n" +
			"(jecloud-APP_ENV_run-PID.service: in the journal, accounted, and listed by `jeagent ps` while\n" +
			"it runs). CMD is looked up in the app's PATH (its Node.js, node_modules/.bin) and gets ARGS\n" +
			"exactly as given: no shell reads them (write `sh -c '...'` for one).\n" +
			"On a terminal (stdin and stdout), CMD gets a terminal of its own: window size changes and\n" +
			"Ctrl-C reach it. Otherwise stdin, stdout and stderr are passed through as they are, and the\n" +
			"command is stopped when jeagent gets SIGINT, SIGTERM or SIGHUP or its stdout's reader goes away.\n" +
			"The exit status is CMD's. `jepush run ENV -- CMD` runs this over SSH.\n\n" +
			"Examples:\n" +
			"  jeagent run shop prod -- npm run migrate\n" +
			"  jeagent run shop prod -- node\n" +
			"  echo 'select 1' | jeagent run shop prod -- ./bin/query",
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) > 2 && args[2] == "--" {
				args = append(args[:2:2], args[3:]...)
			}
			if len(args) < 3 {
				return &exitError{2, fmt.Errorf("run: want APP ENV -- CMD [ARGS...], got %d argument(s); see `jeagent run --help`", len(c.Args().Slice()))}
			}
			ae := state.AppEnv{App: args[0], Env: args[1]}
			if err := ae.Check(); err != nil {
				return &exitError{2, err}
			}
			hs := builtins()
			anyHooks := make([]any, len(hs))
			for i, h := range hs {
				anyHooks[i] = h
			}
			p, err := oneoff.Live(layout(c), ae, anyHooks)
			if err != nil {
				return err
			}
			if term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd())) {
				return oneoff.Exec(p, oneoff.PTY, args[2:])
			}
			code, err := oneoff.Run(p, args[2:])
			if err != nil {
				return err
			}
			if code != 0 {
				return &exitError{code: code} // CMD's status, said by CMD
			}
			return nil
		},
	}
}
