package command

import "github.com/urfave/cli/v2"

func psCommand() *cli.Command {
	return &cli.Command{
		Name:      "ps",
		Usage:     "show every process of ENV on each server: state, restarts, uptime",
		ArgsUsage: "ENV",
		Description: "Like `heroku ps`: one line per process instance (web.1, worker.2) and per\n" +
			"service (redis, mongodb) on each server, with its systemd state, how often it\n" +
			"was restarted after a crash, and since when it runs.",
		Flags: append(targetFlags(), dirFlag(), &cli.BoolFlag{Name: "json", Usage: "print JSON for scripts"}),
		Action: func(c *cli.Context) error {
			cl, err := envClient(c)
			if err != nil {
				return err
			}
			return cl.PS(c.Context, c.Bool("json"))
		},
	}
}
