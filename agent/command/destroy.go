package command

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/jecloud/jecloud/internal/launch"
	"github.com/jecloud/jecloud/internal/plan"
	"github.com/jecloud/jecloud/internal/rollforward"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/urfave/cli/v2"
)

func destroyCommand() *cli.Command {
	return &cli.Command{
		Name:      "destroy",
		Usage:     "remove an app environment from this server (`jepush apps:destroy`)",
		ArgsUsage: "APP ENV",
		Description: "Records the request in app.json (\"destroy\"): from then on the environment is not\n" +
			"routed, deployed or reported live. The roll-forward (which holds its lock) then runs\n" +
			"every hook's destroy phase, in reverse order: the app's units stop and go, its user,\n" +
			"ports, front door routes and static site go, and the services' units (Redis, MongoDB,\n" +
			"their backup timers, the mail relay). Then its releases, config vars and app.json go.\n" +
			"Data (APP/ENV/data, Redis's and MongoDB's data and passwords) stays unless --data;\n" +
			"backups on S3 always stay. Interrupted, a run of the roll-forward or of this command\n" +
			"finishes it. It waits until the environment is gone, unless --no-wait.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "data", Usage: "remove the services' data and the app's data directory too"},
			&cli.BoolFlag{Name: "no-wait", Usage: "record the request and start a roll-forward, without waiting"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Minute, Usage: "give up waiting after `DURATION` (the removal goes on)"},
			byFlag,
		},
		Action: func(c *cli.Context) error {
			ae, err := appEnvArgs(c, 2, 2)
			if err != nil {
				return err
			}
			by := c.String("by")
			if err := checkBy(by); err != nil {
				return err
			}
			if tool, user := requester(); tool != "" {
				by = strings.TrimSpace(by + " (" + tool + " " + user + ")")
			}
			l := layout(c)
			if _, err := os.Stat(l.AppJSON(ae)); errors.Is(err, fs.ErrNotExist) {
				return &exitError{3, fmt.Errorf("%s is not on this server (no %s): nothing to destroy", ae, l.AppJSON(ae))}
			}
			from := rollforward.LogSize(l)
			_, err = state.UpdateApp(l.AppJSON(ae), func(a *state.App) error {
				a.Destroy = markDestroy(a.Destroy, c.Bool("data"), by, state.Now())
				if a.Backoff != nil && a.Backoff.Step == plan.Destroy {
					a.Backoff = nil // asked again: try now
				}
				return nil
			})
			if err != nil {
				return err
			}
			out := c.App.Writer
			fmt.Fprintf(out, "%s: destroy requested (%s)\n", ae, dataWord(c.Bool("data")))
			run, err := launch.Rollforward(c.Context, l.Root)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%s: %s\n", ae, run.How)
			if c.Bool("no-wait") || os.Getenv("JECLOUD_PHASE") != "" {
				return nil
			}
			ctx, done := waitContext(c)
			defer done()
			if err := rollforward.FollowDestroy(ctx, l, ae, from, out, kicker(ctx, l, &run)); err != nil {
				if ctx.Err() != nil {
					return &exitError{2, fmt.Errorf("stopped waiting (%v); the removal goes on: see `jeagent status %s %s`", context.Cause(ctx), ae.App, ae.Env)}
				}
				return err
			}
			run.Wait(time.Second)
			fmt.Fprintf(out, "%s: destroyed\n", ae)
			return nil
		},
	}
}

// markDestroy is app.json's "destroy" after a request: the first request's
// date stays, and data once asked for stays asked for (its removal may
// have begun).
func markDestroy(d *state.Destroy, data bool, by string, now time.Time) *state.Destroy {
	if d == nil {
		d = &state.Destroy{RequestDate: now}
	}
	d.Data = d.Data || data
	if by != "" {
		d.By = by
	}
	return d
}

func dataWord(data bool) string {
	if data {
		return "its data too"
	}
	return "its data stays"
}
