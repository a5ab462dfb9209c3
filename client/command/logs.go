package command

import (
	"github.com/urfave/cli/v2"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "show the app's journal on ENV's servers",
		ArgsUsage: "ENV",
		Description: "Shows the app's journal from each server of ENV (each line prefixed with its\n" +
			"host when there are several). With -f, goes on showing new lines from all of\n" +
			"them until Ctrl-C. With --proxy, shows the front door's access log of the app\n" +
			"instead: one line per request (docs/routing.md#logs).\n\n" +
			"Examples:\n" +
			"  jepush logs prod -f --type web\n" +
			"  jepush logs prod --since \"1 hour ago\" --grep 'error|timeout'\n" +
			"  jepush logs prod --proxy --since today",
		Flags: append(targetFlags(), dirFlag(),
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "show new lines as they come"},
			&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Usage: "show the last `N` lines (default: the agent's)"},
			&cli.BoolFlag{Name: "proxy", Usage: "show the front door's access log of the app instead (time, method, host, URI, status, duration)"},
			&cli.BoolFlag{Name: "json", Usage: "with --proxy: print each request as the front door logged it (one JSON object a line)"},
			&cli.StringFlag{Name: "type", Usage: "only the lines of process type `TYPE` (web, worker, ...)"},
			&cli.StringFlag{Name: "since", Usage: "only lines from `TIME` on, as journalctl reads it (\"2026-12-04 10:00\", \"1 hour ago\", \"15 min ago\", today)"},
			&cli.StringFlag{Name: "grep", Usage: "only lines matching `PATTERN` (journalctl's --grep: a PCRE, case-insensitive when all lower case)"},
		),
		Action: func(c *cli.Context) error {
			if c.Bool("json") && !c.Bool("proxy") {
				return usage("--json goes with --proxy (the app's own lines are text)")
			}
			cl, err := envClient(c)
			if err != nil {
				return err
			}
			var flags []string
			if c.Bool("proxy") {
				flags = append(flags, "--proxy")
			}
			if c.Bool("json") {
				flags = append(flags, "--json")
			}
			for _, f := range []string{"type", "since", "grep"} {
				if c.IsSet(f) {
					flags = append(flags, "--"+f+"="+c.String(f))
				}
			}
			return cl.Logs(c.Context, c.Bool("follow"), c.Int("lines"), flags...)
		},
	}
}
