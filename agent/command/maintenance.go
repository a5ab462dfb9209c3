package command

import (
	"fmt"

	"github.com/jecloud/jecloud/internal/domains"
	"github.com/urfave/cli/v2"
)

func maintenanceCommands() []*cli.Command {
	one := func(on bool) *cli.Command {
		name, usage := "maintenance:off", "serve the app again (end maintenance mode)"
		if on {
			name, usage = "maintenance:on", "answer 503 with the maintenance page, without stopping the app"
		}
		return &cli.Command{
			Name:      name,
			Usage:     usage,
			ArgsUsage: "APP ENV",
			Description: "Sets app.json's \"maintenance\" and starts a roll-forward, which loads it into the front\n" +
				"door. The page is the live release's maintenance.html (at the root of the bundle), else\n" +
				"a plain one. The app keeps running. See docs/routing.md#maintenance.",
			Action: func(c *cli.Context) error {
				ae, err := appEnvArgs(c, 2, 2)
				if err != nil {
					return err
				}
				changed, err := domains.SetMaintenance(layout(c), ae, on)
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				word := map[bool]string{true: "on", false: "off"}[on]
				if !changed {
					fmt.Fprintf(c.App.Writer, "%s: maintenance is already %s: nothing to do\n", ae, word)
					return nil
				}
				fmt.Fprintf(c.App.Writer, "%s: maintenance %s\n", ae, word)
				return applyRoutes(c, ae)
			},
		}
	}
	return []*cli.Command{one(true), one(false)}
}
