package command

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/jecloud/jecloud/internal/appspec"
	"github.com/jecloud/jecloud/internal/suggest"

	"github.com/jecloud/jecloud/internal/state"
	"github.com/urfave/cli/v2"
)

func restartCommand() *cli.Command {
	return &cli.Command{
		Name:      "restart",
		Usage:     "restart the live version's processes, one instance at a time",
		ArgsUsage: "APP ENV [TYPE]",
		Description: "A deployment of the live version: it goes straight to the deployed hooks, which restart\n" +
			"every process the way a deploy does (web instances without dropping a request), and it\n" +
			"is recorded, and fails, like one. With TYPE (web, worker, ...), only that process type's\n" +
			"instances restart; the others go on as they run. A deployment already pending restarts\n" +
			"them anyway.",
		Flags: append([]cli.Flag{byFlag}, waitFlags...),
		Action: func(c *cli.Context) error {
			ae, err := appEnvArgs(c, 2, 3)
			if err != nil {
				return err
			}
			typ := c.Args().Get(2)
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
			var types []string
			if typ != "" {
				if err := checkRestartType(layout(c), ae, a.CurrentVersion, typ); err != nil {
					return &exitError{3, err}
				}
				types = []string{typ}
				fmt.Fprintf(c.App.Writer, "%s: restarting %s's %s processes\n", ae, a.CurrentVersion, typ)
			} else {
				fmt.Fprintf(c.App.Writer, "%s: restarting %s\n", ae, a.CurrentVersion)
			}
			return requestRestart(c, ae, a.CurrentVersion, types)
		},
	}
}

// checkRestartType refuses a TYPE that the live release's Procfile does
// not have, naming the types it has.
func checkRestartType(l state.Layout, ae state.AppEnv, version, typ string) error {
	if err := appspec.CheckProcessType(typ); err != nil {
		return err
	}
	spec, err := appspec.Read(l.Release(ae, version))
	if err != nil {
		return err
	}
	names := spec.ProcessNames()
	if slices.Contains(names, typ) {
		return nil
	}
	msg := fmt.Sprintf("%s: the live release %s has no process type %q (its types: %s)", ae, version, typ, strings.Join(names, ", "))
	if near := suggest.Nearest(typ, names); near != "" {
		msg += fmt.Sprintf(": did you mean %q?", near)
	}
	return errors.New(msg)
}
