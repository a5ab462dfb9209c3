package command

import (
	"context"
	"fmt"
	"github.com/jecloud/jecloud/internal/appspec"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/jecloud/jecloud/internal/launch"
	"github.com/jecloud/jecloud/internal/rollforward"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/urfave/cli/v2"
)

// byFlag says who asks for a deployment, for `releases` (jepush sends
// USER@HOST of the laptop or CI job).
var byFlag = &cli.StringFlag{Name: "by", Usage: "who asks for it, as `USER@HOST` (shown by releases)"}

// checkBy refuses a --by that a terminal or a log line could not show as
// it is: control characters, or over 200 bytes.
func checkBy(by string) error {
	if len(by) > 200 {
		return fmt.Errorf("--by %.40q...: over 200 bytes: give USER@HOST", by)
	}
	for _, r := range by {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("--by %q: control characters are refused: give USER@HOST", by)
		}
	}
	return nil
}

var waitFlags = []cli.Flag{
	&cli.BoolFlag{Name: "wait", Aliases: []string{"w"}, Usage: "stream progress and exit 0 only when the version is live"},
	&cli.DurationFlag{Name: "timeout", Value: 30 * time.Minute, Usage: "with --wait: give up waiting after `DURATION` (the deployment goes on)"},
}

func deployCommand() *cli.Command {
	return &cli.Command{
		Name:      "deploy",
		Usage:     "record a deployment of version ID and start a roll-forward",
		ArgsUsage: "APP ENV ID",
		Description: "The bundle ROOT/APP/ENV/source/versions/ID.tar.zst (or the release ID/) must be on\n" +
			"this server (`jepush` uploads it). A deployment already pending is aborted: the newest wins.\n" +
			"The roll-forward runs apart from this command, so interrupting it stops nothing.",
		Flags: append(append([]cli.Flag{
			&cli.BoolFlag{Name: "force", Usage: "deploy even when ID is already live (its processes restart)"},
			byFlag,
		}, placeFlags()...), waitFlags...),
		Action: func(c *cli.Context) error {
			ae, id, err := appEnvVersionArgs(c)
			if err != nil {
				return err
			}
			if err := checkBy(c.String("by")); err != nil {
				return err
			}
			l := layout(c)
			store := versionStore(c)
			if !store.Has(ae, id) {
				return &exitError{3, fmt.Errorf("version %s is not on this server (no %s): push it with `jepush`", id, l.Bundle(ae, id))}
			}
			p, err := placementOf(c)
			if err != nil {
				return err
			}
			placed := false
			if p != nil {
				if placed, err = recordPlacement(l, ae, p); err != nil {
					return err
				}
				if placed {
					fmt.Fprintf(c.App.Writer, "%s: this server's role: %s (roles with servers: %v)\n", ae, p.Role, p.Roles)
				}
			}
			if !c.Bool("force") && !placed && store.Live(ae, id) {
				fmt.Fprintf(c.App.Writer, "%s: %s is already live: nothing to do (--force deploys it again)\n", ae, id)
				return nil
			}
			return request(c, ae, id, false)
		},
	}
}

// request records the deployment, starts a roll-forward and, with --wait, follows it.
func request(c *cli.Context, ae state.AppEnv, id string, rollback bool) error {
	return requestTypes(c, ae, id, rollback, nil)
}

// requestRestart asks for a restart of the live version id: of the
// process types given, or of every one.
func requestRestart(c *cli.Context, ae state.AppEnv, id string, types []string) error {
	return requestTypes(c, ae, id, false, types)
}

func requestTypes(c *cli.Context, ae state.AppEnv, id string, rollback bool, types []string) error {
	l := layout(c)
	by := c.String("by")
	if err := checkBy(by); err != nil {
		return err
	}
	if tool, user := requester(); tool != "" {
		// Through sudo: who the server knows, beside what jepush says.
		by = strings.TrimSpace(by + " (" + tool + " " + user + ")")
	}
	from := rollforward.LogSize(l)
	a, err := state.UpdateApp(l.AppJSON(ae), func(a *state.App) error {
		if a.Destroy != nil {
			return fmt.Errorf("%s is being destroyed (since %s): nothing is deployed to it; once `jeagent destroy %s %s` is done, push again",
				ae, a.Destroy.RequestDate.Format(time.RFC3339), ae.App, ae.Env)
		}
		a.Request(id, state.Now(), rollback)
		if by != "" && a.Deployment.Version == id {
			a.Deployment.By = by
		}
		if a.Deployment.Version == id && a.Deployment.State == state.StateRequested {
			a.Deployment.Types = types
		}
		return nil
	})
	if err != nil {
		return err
	}
	requested := a.Deployment.RequestDate
	out := c.App.Writer
	fmt.Fprintf(out, "%s: deployment of %s requested\n", ae, id)
	run, err := launch.Rollforward(c.Context, l.Root)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %s\n", ae, run.How)
	if !c.Bool("wait") {
		return nil
	}
	if phase := os.Getenv("JECLOUD_PHASE"); phase != "" {
		// Called from a hook: the roll-forward that would carry this out is
		// the one waiting for that hook.
		fmt.Fprintf(out, "%s: called from a %s hook: not waiting (this deployment runs once the current roll-forward is done)\n", ae, phase)
		return nil
	}
	return follow(c, ae, id, requested, from, run)
}

// waitContext is what a command waits in: until --timeout, or Ctrl-C.
func waitContext(c *cli.Context) (context.Context, func()) {
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	return ctx, func() { stop(); cancel() }
}

// kicker starts a roll-forward each time it is called, keeping the
// latest run in *run (for the command to wait on at the end).
func kicker(ctx context.Context, l state.Layout, run **launch.Run) func() error {
	return func() error {
		r, err := launch.Rollforward(ctx, l.Root)
		if err == nil {
			*run = r
		}
		return err
	}
}

// follow streams the deployment's progress until it ends. run is the
// roll-forward this command started, if any (nil: none).
func follow(c *cli.Context, ae state.AppEnv, id string, requested time.Time, from int64, run *launch.Run) error {
	l := layout(c)
	ctx, done := waitContext(c)
	defer done()
	res, err := rollforward.Follow(ctx, l, ae, id, requested, from, c.App.Writer, kicker(ctx, l, &run))
	if err != nil {
		if ctx.Err() != nil {
			return &exitError{2, fmt.Errorf("stopped waiting for %s (%v); the deployment goes on: follow it with `jeagent status %s %s --follow`",
				id, context.Cause(ctx), ae.App, ae.Env)}
		}
		return err
	}
	// The run this command started wrote the outcome and ends a moment
	// later; wait for it (briefly: it may have gone on to other work), so
	// that what runs next on this server finds no run of ours.
	defer func() { run.Wait(time.Second) }()
	if !res.Live {
		return fmt.Errorf("deploy of %s failed: %s", id, res.Reason)
	}
	fmt.Fprintf(c.App.Writer, "%s: %s %s\n", ae, id, appspec.Outcome(l.Release(ae, id), ""))
	return nil
}
