package command

import (
	"regexp"

	"github.com/urfave/cli/v2"
)

var scaleArgRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,29}=([0-9]|[1-5][0-9]|6[0-4])$`)

func scaleCommand() *cli.Command {
	return &cli.Command{
		Name:      "ps:scale",
		Usage:     "run N instances of a process type on each of ENV's servers",
		ArgsUsage: "ENV TYPE=N...",
		Description: "Like `heroku ps:scale`: `jepush ps:scale prod web=2 worker=1`. The counts are kept in\n" +
			"each server's app.json (\"scale\"), where they override jecloud.toml's [scale], and\n" +
			"applied at once by a restart (instances are started or stopped one at a time).",
		Flags: append(targetFlags(), dirFlag(), &cli.BoolFlag{Name: "no-restart", Usage: "apply at the next deploy or restart only"}),
		Action: func(c *cli.Context) error {
			if err := args(c, 2, 1<<20, "ENV TYPE=N..."); err != nil {
				return err
			}
			counts := c.Args().Slice()[1:]
			for _, a := range counts {
				if !scaleArgRE.MatchString(a) {
					return usage("%q: want TYPE=N with N from 0 to 64, e.g. web=2", a)
				}
			}
			cl, err := newClient(c, c.String("dir"), c.Args().Get(0))
			if err != nil {
				return err
			}
			return cl.Scale(c.Context, counts, c.Bool("no-restart"))
		},
	}
}
