package command

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jecloud/jecloud/internal/configvars"
)

func configCommands() []*cli.Command {
	noRestart := &cli.BoolFlag{Name: "no-restart", Usage: "apply at the next deploy or restart only"}
	return []*cli.Command{
		{
			Name:      "config",
			Usage:     "show the config vars of ENV",
			ArgsUsage: "ENV",
			Description: "Config vars (secrets: API keys, passwords) are kept on each server in\n" +
				"/var/cloud/APP/ENV/config.env, readable by root and the app only, and given to\n" +
				"the app as environment variables. They never appear in status or logs.\n" +
				"With --json: one object, {\"app\", \"env\", \"hosts\": [{\"host\", \"vars\": {KEY: VALUE}, \"error\"}]}.\n\n" +
				"Examples:\n  jepush config prod\n  jepush config prod --json",
			Flags: append(targetFlags(), dirFlag(), jsonFlag()),
			Action: func(c *cli.Context) error {
				cl, err := envClient(c)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return cl.ShowConfigJSON(c.Context)
				}
				return cl.ShowConfig(c.Context)
			},
		},
		{
			Name:      "config:set",
			Usage:     "set config vars on ENV's servers and restart the app",
			ArgsUsage: "ENV KEY=VALUE...",
			Flags:     append(targetFlags(), dirFlag(), noRestart),
			Action: func(c *cli.Context) error {
				if err := args(c, 2, 1<<20, "ENV KEY=VALUE..."); err != nil {
					return err
				}
				vars := map[string]string{}
				for _, a := range c.Args().Slice()[1:] {
					k, v, ok := strings.Cut(a, "=")
					if !ok {
						return usage("%q is not KEY=VALUE", a)
					}
					if err := configvars.CheckName(k); err != nil {
						return usageError{err}
					}
					vars[k] = v
				}
				cl, err := newClient(c, c.String("dir"), c.Args().Get(0))
				if err != nil {
					return err
				}
				return cl.SetConfig(c.Context, vars, c.Bool("no-restart"))
			},
		},
		{
			Name:      "config:unset",
			Usage:     "remove config vars on ENV's servers and restart the app",
			ArgsUsage: "ENV KEY...",
			Flags:     append(targetFlags(), dirFlag(), noRestart),
			Action: func(c *cli.Context) error {
				if err := args(c, 2, 1<<20, "ENV KEY..."); err != nil {
					return err
				}
				cl, err := newClient(c, c.String("dir"), c.Args().Get(0))
				if err != nil {
					return err
				}
				return cl.UnsetConfig(c.Context, c.Args().Slice()[1:], c.Bool("no-restart"))
			},
		},
	}
}
