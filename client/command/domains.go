package command

import (
	"github.com/urfave/cli/v2"

	"github.com/jecloud/jecloud/internal/names"
)

func domainsCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name:      "domains",
			Usage:     "show the host names routed to ENV, with their certificates",
			ArgsUsage: "ENV",
			Description: "Shows, from each server of ENV, the host names its front door routes to the app\n" +
				"(app.json \"domains\", then the default name APP-ENV.BASE when the server has a base\n" +
				"domain), each with its certificate; on EC2 also those the global state keeps.\n" +
				"See docs/routing.md#domains.",
			Flags: append(targetFlags(), dirFlag(), &cli.BoolFlag{Name: "json", Usage: "print each server's JSON"}),
			Action: func(c *cli.Context) error {
				cl, err := envClient(c)
				if err != nil {
					return err
				}
				return cl.ShowDomains(c.Context, c.Bool("json"))
			},
		},
		{
			Name:      "domains:add",
			Usage:     "route host names to ENV on each of its servers (with automatic TLS)",
			ArgsUsage: "ENV HOST...",
			Description: "`jepush domains:add prod www.example.com example.com`: each server of ENV records the\n" +
				"names in its app.json and its front door routes them to the app at once, with a\n" +
				"certificate from ACME once DNS points at the server. A name another app environment\n" +
				"of a server holds is refused, naming it. On EC2 the names are also kept in the global\n" +
				"state, so that servers made later route them too.",
			Flags: append(targetFlags(), dirFlag()),
			Action: func(c *cli.Context) error {
				if err := args(c, 2, 1<<20, "ENV HOST..."); err != nil {
					return err
				}
				hosts := c.Args().Slice()[1:]
				for _, h := range hosts {
					if err := names.CheckHost(h); err != nil {
						return usageError{err}
					}
				}
				cl, err := newClient(c, c.String("dir"), c.Args().Get(0))
				if err != nil {
					return err
				}
				return cl.AddDomains(c.Context, hosts)
			},
		},
		{
			Name:        "domains:remove",
			Usage:       "stop routing a host name to ENV",
			ArgsUsage:   "ENV HOST",
			Description: "Removes the name from each server's app.json (and, on EC2, from the global state).",
			Flags:       append(targetFlags(), dirFlag()),
			Action: func(c *cli.Context) error {
				if err := args(c, 2, 2, "ENV HOST"); err != nil {
					return err
				}
				host := c.Args().Get(1)
				if err := names.CheckHost(host); err != nil {
					return usageError{err}
				}
				cl, err := newClient(c, c.String("dir"), c.Args().Get(0))
				if err != nil {
					return err
				}
				return cl.RemoveDomain(c.Context, host)
			},
		},
	}
}

func maintenanceCommands() []*cli.Command {
	one := func(on bool) *cli.Command {
		name, usage := "maintenance:off", "serve ENV's app again"
		if on {
			name, usage = "maintenance:on", "answer 503 with a maintenance page on ENV, without stopping the app"
		}
		return &cli.Command{
			Name:      name,
			Usage:     usage,
			ArgsUsage: "ENV",
			Description: "The front door of each server answers every request for the app with 503 and the\n" +
				"live release's maintenance.html (at the root of the app directory), else a plain page,\n" +
				"until maintenance:off. The app keeps running. See docs/routing.md#maintenance.",
			Flags: append(targetFlags(), dirFlag()),
			Action: func(c *cli.Context) error {
				cl, err := envClient(c)
				if err != nil {
					return err
				}
				return cl.Maintenance(c.Context, on)
			},
		}
	}
	return []*cli.Command{one(true), one(false)}
}
