package command

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/jecloud/jecloud/internal/sysd"
	"github.com/urfave/cli/v2"
)

func psCommand() *cli.Command {
	return &cli.Command{
		Name:      "ps",
		Usage:     "show the app environment's processes: state, restarts, uptime",
		ArgsUsage: "APP ENV",
		Description: "Lists the systemd units jecloud-APP_ENV_* (one per process instance, and the\n" +
			"Redis and MongoDB instances) with their state, how often systemd restarted them\n" +
			"and since when they are in that state.",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON for scripts"}},
		Action: func(c *cli.Context) error {
			ae, err := appEnvArgs(c, 2, 2)
			if err != nil {
				return err
			}
			ps, err := sysd.Processes(c.Context, ae.App, ae.Env)
			if err != nil {
				return fmt.Errorf("%w (is systemd running here?)", err)
			}
			if c.Bool("json") {
				if ps == nil {
					ps = []sysd.Process{}
				}
				return printJSON(c, map[string]any{"app": ae.App, "env": ae.Env, "processes": ps})
			}
			if len(ps) == 0 {
				fmt.Fprintf(c.App.Writer, "%s: no processes\n", ae)
				return nil
			}
			w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PROCESS\tSTATE\tRESTARTS\tSINCE\tPID")
			for _, p := range ps {
				name := p.Type
				if p.Instance != "" {
					name += "." + p.Instance
				}
				since := ""
				if !p.Since.IsZero() {
					since = fmt.Sprintf("%s (%s)", p.Since.Format(time.RFC3339), time.Since(p.Since).Round(time.Second))
				}
				fmt.Fprintf(w, "%s\t%s/%s\t%d\t%s\t%d\n", name, p.State, p.Sub, p.Restarts, since, p.PID)
			}
			return w.Flush()
		},
	}
}
