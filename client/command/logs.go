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
			"instead: one line per request (docs/routing.md#logs).",
		Flags: append(targetFlags(), dirFlag(),
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "show new lines as they come"},
			&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Usage: "show the last `N` lines (default: the agent's)"},
			&cli.BoolFlag{Name: "proxy", Usage: "show the front door's access log of the app instead (time, method, host, URI, status, duration)"},
			&cli.BoolFlag{Name: "json", Usage: "with --proxy: print each request as the front door logged it (one JSON object a line)"},
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
			return cl.Logs(c.Context, c.Bool("follow"), c.Int("lines"), flags...)
		},
	}
}
