package command

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/jecloud/jecloud/internal/names"
)

func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:      "rollback",
		Usage:     "go back to the last good version (or to ID) on ENV's servers",
		ArgsUsage: "ENV [ID]",
		Description: "Runs `jeagent rollback --wait` on each server of ENV, one after another, and\n" +
			"shows its progress. Exit status 0 only when the version is live everywhere.\n" +
			"With --json, the progress goes to stderr and stdout gets one object at the end:\n" +
			resultShape + "\n\n" +
			"Examples:\n  jepush rollback prod\n  jepush rollback prod 2734f0ed93e8 --json",
		Flags: append(targetFlags(), dirFlag(), jsonFlag()),
		Action: func(c *cli.Context) error {
			if err := args(c, 1, 2, "ENV [ID]"); err != nil {
				return err
			}
			id := c.Args().Get(1)
			if id != "" {
				if err := names.CheckVersion(id); err != nil {
					return usageError{err}
				}
			}
			cl, err := newClient(c, c.String("dir"), c.Args().Get(0))
			if err != nil {
				return err
			}
			fmt.Fprintf(cl.Stderr, "rolling back %s %s on %s\n", cl.App, cl.Env, targets(cl))
			if !c.Bool("json") {
				return cl.Rollback(c.Context, id)
			}
			return withResult(c, cl, func() string { return id }, func() error { return cl.Rollback(c.Context, id) })
		},
	}
}
