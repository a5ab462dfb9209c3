package command

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/jecloud/jecloud/internal/state"
	"github.com/urfave/cli/v2"
)

func restartCommand() *cli.Command {
	return &cli.Command{
		Name:      "restart",
		Usage:     "restart the live version's processes, one instance at a time",
		ArgsUsage: "APP ENV",
		Description: "A deployment of the live version: it goes straight to the deployed hooks, which restart\n" +
			"every process the way a deploy does (web instances without dropping a request), and it\n" +
			"is recorded, and fails, like one. A deployment already pending restarts them anyway.",
		Flags: append([]cli.Flag{byFlag}, waitFlags...),
		Action: func(c *cli.Context) error {
			ae, err := appEnvArgs(c, 2, 2)
			if err != nil {
				return err
			}
			var a state.App
			if err := state.Read(layout(c).AppJSON(ae), &a); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return &exitError{3, fmt.Errorf("%s has never been deployed here: nothing to restart", ae)}
				}
				return err
			}
			if a.CurrentVersion == "" {
				return &exitError{3, fmt.Errorf("%s has no live version here: nothing to restart", ae)}
			}
			if d := a.Deployment; d != nil {
				fmt.Fprintf(c.App.Writer, "%s: %s is being deployed: it restarts every process when it goes live\n", ae, d.Version)
				return nil
			}
			fmt.Fprintf(c.App.Writer, "%s: restarting %s\n", ae, a.CurrentVersion)
			return request(c, ae, a.CurrentVersion, false)
		},
	}
}
