package command

import (
	"github.com/urfave/cli/v2"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show what is live on ENV's servers and how the last deploy went",
		ArgsUsage: "ENV",
		Description: "Asks each server for the app's status in ENV: the live version, a deployment\n" +
			"in progress and its step, the last failure and its reason. --json prints\n" +
			"{\"app\", \"env\", \"hosts\": [{\"host\", \"status\" (the agent's JSON), \"error\"}]}.\n" +
			"--follow shows the progress of a deployment in progress until it ends, and\n" +
			"exits like a push: 0 only if it went live.",
		Flags: append(targetFlags(), dirFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "watch a deployment in progress until it ends"},
		),
		Action: func(c *cli.Context) error {
			if c.Bool("json") && c.Bool("follow") {
				return usage("--json and --follow do not go together")
			}
			cl, err := envClient(c)
			if err != nil {
				return err
			}
			if c.Bool("follow") {
				return cl.Follow(c.Context)
			}
			return cl.Status(c.Context, c.Bool("json"))
		},
	}
}
