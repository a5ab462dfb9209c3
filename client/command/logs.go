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
			"them until Ctrl-C.",
		Flags: append(targetFlags(), dirFlag(),
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "show new lines as they come"},
			&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Usage: "show the last `N` lines (default: the agent's)"},
		),
		Action: func(c *cli.Context) error {
			cl, err := envClient(c)
			if err != nil {
				return err
			}
			return cl.Logs(c.Context, c.Bool("follow"), c.Int("lines"))
		},
	}
}
