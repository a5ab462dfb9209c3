package command

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/jecloud/jecloud/internal/push"
)

func pushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "bundle DIR, upload it and deploy it to ENV's servers (the default command)",
		ArgsUsage: "DIR ENV",
		Description: "Bundles DIR, asks each server of ENV whether it has that version, uploads it if\n" +
			"not, runs `jeagent deploy --wait` and shows its progress. Servers are done one\n" +
			"after another; the first failure stops the push. Exit status 0 only when the\n" +
			"version is live on every server. A server where that version is already live\n" +
			"does nothing (--force deploys it again, restarting its processes).\n" +
			"On EC2 with two web servers or more, a load balancer is made in front of them,\n" +
			"and each web server leaves its rotation (drained) while it switches and is back\n" +
			"(healthy) before the next one starts (docs/ec2.md).\n" +
			"Before anything is sent, DIR is checked as `jepush check DIR` does.\n" +
			"`jepush DIR ENV` is short for `jepush push DIR ENV`.\n" +
			"With --json, the progress goes to stderr and stdout gets one object at the end:\n" +
			resultShape + "\n\n" +
			"Examples:\n  jepush ./myapp prod\n  jepush push ./myapp staging --host deploy@203.0.113.7 --json",
		Flags: append(targetFlags(), jsonFlag(),
			&cli.DurationFlag{Name: "timeout", Usage: "give up on a server's deploy after this long", DefaultText: "the agent's, 30m"},
			&cli.BoolFlag{Name: "force", Usage: "deploy even where the version is already live (its processes restart)"},
		),
		Action: func(c *cli.Context) error {
			if err := args(c, 2, 2, "DIR ENV"); err != nil {
				return err
			}
			dir, env := c.Args().Get(0), c.Args().Get(1)
			if _, _, err := checkDir(dir); err != nil {
				return usage("%w\nnothing was sent: fix it and push again (`jepush check %s` checks without pushing)", err, dir)
			}
			cl, cfg, err := loadClient(c, dir, env, true)
			if err != nil {
				return err
			}
			fmt.Fprintf(cl.Stderr, "pushing %s: app %s (from %s), environment %s, on %s\n", dir, cl.App, cfg.AppFrom, env, targets(cl))
			if !c.Bool("json") {
				return cl.Push(c.Context, dir, push.Options{Timeout: c.Duration("timeout"), Force: c.Bool("force"), Requested: cl.Requested})
			}
			var version string
			requested := func(ctx context.Context, id string) error {
				version = id
				if cl.Requested != nil {
					return cl.Requested(ctx, id)
				}
				return nil
			}
			return withResult(c, cl, func() string { return version }, func() error {
				return cl.Push(c.Context, dir, push.Options{Timeout: c.Duration("timeout"), Force: c.Bool("force"), Requested: requested})
			})
		},
	}
}
