package command

import (
	"errors"
	"fmt"
	"os"

	"github.com/jecloud/jecloud/internal/fleet"
	"github.com/urfave/cli/v2"
)

func rollforwardCommand() *cli.Command {
	return &cli.Command{
		Name:    "rollforward",
		Aliases: []string{"fwd"},
		Usage:   "carry out whatever the state asks for, until nothing is left to do",
		Description: "Plans the steps (deployments, cleanup of old releases, leftovers of interrupted work),\n" +
			"applies them one at a time and records each in app.json, so a run killed at any point is\n" +
			"finished by the next. When another run holds the lock it says which pid and exits 0.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print the plan and change nothing"},
			&cli.BoolFlag{Name: "retry", Usage: "retry steps that are backing off now"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "log to the log file only, not to stderr"},
		},
		Action: func(c *cli.Context) error {
			e := engine(c, c.Bool("quiet"))
			e.IgnoreBackoff = c.Bool("retry")
			l := layout(c)
			if !c.Bool("dry-run") {
				// The global state first (servers of an environment on S3):
				// what it requests is planned in this run. Without "global"
				// in server.json this costs one read of it.
				fo, err := fleet.Open(c.Context, l.Root, e.Log)
				if err != nil && !errors.Is(err, fleet.ErrOff) {
					fmt.Fprintf(e.Log, "%v\n", err)
				}
				if fo != nil {
					if err := fo.Sync(c.Context, versionStore(c)); err != nil {
						fmt.Fprintf(e.Log, "%v\n", err)
					}
					defer func() {
						if err := fo.Report(c.Context); err != nil {
							fmt.Fprintf(e.Log, "%v\n", err)
						}
					}()
				}
			}
			steps, problems, err := e.Plan()
			if err != nil {
				return err
			}
			for _, p := range problems {
				fmt.Fprintf(os.Stderr, "%s: skipped: %v\n", p.AppEnv, p.Err)
			}
			if c.Bool("dry-run") {
				for _, s := range steps {
					fmt.Fprintln(c.App.Writer, s)
				}
				return nil
			}
			if len(steps) == 0 {
				return nil // the idle tick: no lock, no write
			}
			ok, holder, err := e.RunLocked(c.Context)
			if err == nil && !ok {
				fmt.Fprintf(c.App.Writer, "another roll-forward is running (pid %d, lock %s); it will do the work\n", holder, l.PIDFile())
			}
			return err
		},
	}
}
