package command

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"text/tabwriter"

	"github.com/jecloud/jecloud/internal/domains"
	"github.com/jecloud/jecloud/internal/launch"
	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/urfave/cli/v2"
)

// hostStatus is one host name of `jeagent domains --json`.
type hostStatus struct {
	Host string `json:"host"`
	// Default: the app environment's default name under server.json's
	// base domain (not in app.json).
	Default bool `json:"default,omitempty"`
	// Certificate is the host's certificate as the front door reports it
	// (issued, expiry, the CA's reason for a failure); null when it
	// reports none (no front door installed).
	Certificate any `json:"certificate"`
}

// certificateStates returns the certificate state of each of hosts that the
// front door reports one for (proxy.Certificates, through status.go's
// hostCertificates; none where the front door is not installed). The
// values are printed with %v in the table and as they are in --json.
var certificateStates func(ctx context.Context, l state.Layout, hosts []string) map[string]any = hostCertificates

func domainsCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name:      "domains",
			Usage:     "show the host names the front door routes to the app environment",
			ArgsUsage: "APP ENV",
			Description: "Lists app.json's \"domains\", then the default name APP-ENV.BASE when server.json sets\n" +
				"\"proxy\": {\"base_domain\": \"BASE\"}, each with its certificate. See docs/routing.md.",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON for scripts"}},
			Action: func(c *cli.Context) error {
				ae, err := appEnvArgs(c, 2, 2)
				if err != nil {
					return err
				}
				l := layout(c)
				var a state.App
				if err := state.Read(l.AppJSON(ae), &a); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				var s state.Server
				if err := state.Read(l.ServerJSON(), &s); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				hosts := []hostStatus{}
				for _, h := range a.Domains {
					hosts = append(hosts, hostStatus{Host: h})
				}
				if s.Proxy != nil {
					if h := routes.DefaultName(ae, s.Proxy.BaseDomain); h != "" {
						hosts = append(hosts, hostStatus{Host: h, Default: true})
					}
				}
				names := make([]string, len(hosts))
				for i, h := range hosts {
					names[i] = h.Host
				}
				certs := certificateStates(c.Context, l, names)
				for i := range hosts {
					hosts[i].Certificate = certs[hosts[i].Host]
				}
				if c.Bool("json") {
					return printJSON(c, map[string]any{"app": ae.App, "env": ae.Env, "domains": hosts, "maintenance": a.Maintenance})
				}
				if len(hosts) == 0 {
					fmt.Fprintf(c.App.Writer, "%s: no domains (add one with `jepush domains:add %s HOST`)\n", ae, ae.Env)
					return nil
				}
				w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "HOST\tCERTIFICATE")
				for _, h := range hosts {
					name, cert := h.Host, "-"
					if h.Default {
						name += " (default name)"
					}
					if h.Certificate != nil {
						cert = fmt.Sprint(h.Certificate)
					}
					fmt.Fprintf(w, "%s\t%s\n", name, cert)
				}
				if a.Maintenance {
					fmt.Fprintln(w, "(maintenance is on: every host answers 503 with the maintenance page)")
				}
				return w.Flush()
			},
		},
		{
			Name:      "domains:add",
			Usage:     "route host names to the app environment, and apply it",
			ArgsUsage: "APP ENV HOST...",
			Description: "Adds the host names to app.json's \"domains\" and starts a roll-forward, which loads\n" +
				"them into the front door (with a certificate from ACME once DNS points here). A name\n" +
				"held by another app environment of this server is refused, naming it.",
			Action: func(c *cli.Context) error {
				ae, err := appEnvArgs(c, 3, 1<<20)
				if err != nil {
					return err
				}
				added, err := domains.Add(layout(c), ae, c.Args().Slice()[2:])
				if err != nil {
					return fmt.Errorf("domains:add: %w", err)
				}
				if len(added) == 0 {
					fmt.Fprintf(c.App.Writer, "%s: %s already routed here: nothing to do\n", ae, strings.Join(c.Args().Slice()[2:], ", "))
					return nil
				}
				fmt.Fprintf(c.App.Writer, "%s: added %s\n", ae, strings.Join(added, ", "))
				return applyRoutes(c, ae)
			},
		},
		{
			Name:        "domains:remove",
			Usage:       "stop routing a host name to the app environment, and apply it",
			ArgsUsage:   "APP ENV HOST",
			Description: "Removes the host name from app.json's \"domains\" and starts a roll-forward.",
			Action: func(c *cli.Context) error {
				ae, err := appEnvArgs(c, 3, 3)
				if err != nil {
					return err
				}
				host := c.Args().Get(2)
				found, err := domains.Remove(layout(c), ae, host)
				if err != nil {
					return fmt.Errorf("domains:remove: %w", err)
				}
				if !found {
					fmt.Fprintf(c.App.Writer, "%s: %q is not one of its domains: nothing to do\n", ae, host)
					return nil
				}
				fmt.Fprintf(c.App.Writer, "%s: removed %s\n", ae, host)
				return applyRoutes(c, ae)
			},
		},
	}
}

// applyRoutes starts a roll-forward, which loads the front door's new
// configuration (its route step); it runs apart from this command.
func applyRoutes(c *cli.Context, ae state.AppEnv) error {
	run, err := launch.Rollforward(c.Context, layout(c).Root)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s: %s to apply it; `jeagent status` shows a configuration the front door refused\n", ae, run.How)
	return nil
}
