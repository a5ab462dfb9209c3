package command

import "github.com/urfave/cli/v2"

func releasesCommand() *cli.Command {
	return &cli.Command{
		Name:      "releases",
		Usage:     "list the deployments of ENV on each server, newest first",
		ArgsUsage: "ENV",
		Description: "Like `heroku releases`: each version deployed or tried, when, who asked for it\n" +
			"(USER@HOST of the laptop or CI job, the git commit of a webhook deploy), whether it\n" +
			"went live or failed and why, and which one is live. `jepush rollback ENV` goes to the\n" +
			"newest good one before the live one; `jepush rollback ENV ID` to any still on the server.\n\n" +
			"Example: jepush releases prod",
		Flags: append(targetFlags(), dirFlag(), &cli.BoolFlag{Name: "json", Usage: "print JSON for scripts"}),
		Action: func(c *cli.Context) error {
			cl, err := envClient(c)
			if err != nil {
				return err
			}
			return cl.Releases(c.Context, c.Bool("json"))
		},
	}
}
