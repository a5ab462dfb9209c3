package command

import (
	"fmt"
	"os"

	"github.com/jecloud/jecloud/internal/state"
	"github.com/urfave/cli/v2"
)

func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:      "rollback",
		Usage:     "deploy the last good version before the current one (or ID)",
		ArgsUsage: "APP ENV [ID]",
		Description: "Without ID, goes back to the version that was live before the current one\n" +
			"(deployed_versions in app.json). The release must still be on the server.",
		Flags: append([]cli.Flag{byFlag}, waitFlags...),
		Action: func(c *cli.Context) error {
			ae, err := appEnvArgs(c, 2, 3)
			if err != nil {
				return err
			}
			l := layout(c)
			var a state.App
			if err := state.Read(l.AppJSON(ae), &a); err != nil {
				if os.IsNotExist(err) {
					return fmt.Errorf("%s has never been deployed here (no %s): nothing to roll back to", ae, l.AppJSON(ae))
				}
				return err
			}
			id := c.Args().Get(2)
			if id == "" {
				if id = a.LastGood(); id == "" {
					return fmt.Errorf("%s has no good release before the live one (%s): `jepush releases %s` (or `jeagent releases %s %s`) lists them; give the ID to go back to",
						ae, a.CurrentVersion, ae.Env, ae.App, ae.Env)
				}
			} else if id, err = versionArg(c, 2); err != nil {
				return err
			}
			if !versionStore(c).Has(ae, id) {
				return &exitError{3, fmt.Errorf("version %s is no longer on this server (cleaned up?): deploy it again with `jepush`", id)}
			}
			return request(c, ae, id, true)
		},
	}
}
