package command

import "github.com/urfave/cli/v2"

func restartCommand() *cli.Command {
	return &cli.Command{
		Name:      "restart",
		Usage:     "restart ENV's processes on each server, one server and one instance at a time",
		ArgsUsage: "ENV [TYPE]",
		Description: "Like `heroku restart`: runs `jeagent restart APP ENV --wait` on each server in turn,\n" +
			"a deployment of the live version that restarts every process the way a deploy does\n" +
			"(web instances without dropping a request). It stops at the first server that fails.\n" +
			"With TYPE, only that process type's instances restart; the others go on as they run.\n\n" +
			"Examples:\n  jepush restart prod\n  jepush restart prod worker",
		Flags: append(targetFlags(), dirFlag()),
		Action: func(c *cli.Context) error {
			if err := args(c, 1, 2, "ENV [TYPE]"); err != nil {
				return err
			}
			cl, err := newClient(c, c.String("dir"), c.Args().Get(0))
			if err != nil {
				return err
			}
			return cl.Restart(c.Context, c.Args().Get(1))
		},
	}
}
