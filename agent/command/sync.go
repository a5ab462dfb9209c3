package command

import (
	"errors"
	"fmt"

	"github.com/jecloud/jecloud/internal/fleet"
	"github.com/jecloud/jecloud/internal/launch"
	"github.com/urfave/cli/v2"
)

func syncCommand() *cli.Command {
	return &cli.Command{
		Name:  "sync",
		Usage: "start a roll-forward now, which first reads the global state on S3",
		Description: "For servers that follow the global state (\"global\" in sys/server.json): starts a\n" +
			"roll-forward apart from the caller, as the timer would a little later. It takes a\n" +
			"rollout slot if one is free, downloads and verifies the requested version, deploys it\n" +
			"and writes what this server runs back into the environment's document. `jepush`\n" +
			"calls this over SSH on every server after it requested a version. See docs/ec2.md.",
		Action: func(c *cli.Context) error {
			l := layout(c)
			if _, err := fleet.ReadSettings(l.Root); err != nil {
				if errors.Is(err, fleet.ErrOff) {
					return fmt.Errorf("%w: add \"global\" to %s (docs/ec2.md)", err, l.ServerJSON())
				}
				return err
			}
			run, err := launch.Rollforward(c.Context, l.Root)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, run.How)
			return nil
		},
	}
}
