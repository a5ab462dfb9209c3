package command

import "github.com/urfave/cli/v2"

func restartCommand() *cli.Command {
	return &cli.Command{
		Name:      "restart",
		Usage:     "restart ENV's processes on each server, one server and one instance at a time",
		ArgsUsage: "ENV",
		Description: "Like `heroku restart`: runs `jeagent restart APP ENV --wait` on each server in turn,\n" +
			"a deployment of the live version that restarts every process the way a deploy does\n" +
			"(web instances without dropping a request). It stops at the first server that fails.\n\n" +
			"Example: jepush restart prod",
		Flags: append(targetFlags(), dirFlag()),
		Action: func(c *cli.Context) error {
			cl, err := envClient(c)
			if err != nil {
				return err
			}
			return cl.Restart(c.Context)
		},
	}
}
