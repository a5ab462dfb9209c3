package command

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/jecloud/jecloud/internal/push"
	"github.com/jecloud/jecloud/systemd"
	"github.com/urfave/cli/v2"
)

func gitSetupCommand() *cli.Command {
	return &cli.Command{
		Name:      "git:setup",
		Usage:     "deploy ENV from pushes to a git repository's branch (webhook + deploy key)",
		ArgsUsage: "ENV",
		Description: "Each server of ENV makes its own deploy key (root-only) and gets the environment's\n" +
			"webhook secret (new each time this runs) and the git server's host keys, read from your\n" +
			"known_hosts. Prints what to paste into GitHub: the webhook URL and secret, and each\n" +
			"server's deploy key. A push to the branch then deploys: the server fetches that commit\n" +
			"over SSH, bundles it like `jepush bundle` and deploys it. See docs/git.md.",
		Flags: append(targetFlags(), dirFlag(),
			&cli.StringFlag{Name: "repo", Required: true, Usage: "the repository's SSH `URL` (git@github.com:acme/shop.git)"},
			&cli.StringFlag{Name: "branch", Value: "main", Usage: "the `BRANCH` whose pushes deploy"},
			&cli.IntFlag{Name: "port", Value: systemd.DefaultWebhookPort, Usage: "the webhook's `PORT` on each server"},
			&cli.BoolFlag{Name: "listen-all", Usage: "make the webhook listen on all addresses, in plain HTTP, instead of loopback only (behind a reverse proxy with TLS, docs/git.md)"},
			&cli.StringSliceFlag{Name: "known-hosts", Usage: "read the git server's host keys from `FILE` (default ~/.ssh/known_hosts)"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		),
		Action: func(c *cli.Context) error {
			cl, err := envClient(c)
			if err != nil {
				return err
			}
			res, err := cl.SetupGit(c.Context, c.String("repo"), c.String("branch"), c.Int("port"), c.Bool("listen-all"), knownHostsFiles(c.StringSlice("known-hosts")))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return json.NewEncoder(c.App.Writer).Encode(res)
			}
			w := c.App.Writer
			fmt.Fprintf(w, "%s %s now deploys pushes to branch %s of %s.\n\n", cl.App, cl.Env, c.String("branch"), c.String("repo"))
			fmt.Fprintf(w, "1. Add a webhook (GitHub: the repository's Settings, Webhooks, Add webhook) per server:\n")
			for _, h := range res.Hosts {
				fmt.Fprintf(w, "     Payload URL:  %s\n", h.WebhookURL)
			}
			fmt.Fprintf(w, "     Content type: application/json\n     Secret:       %s\n     Events:       Just the push event\n", res.Secret)
			if slices.ContainsFunc(res.Hosts, push.GitSetupOne.Loopback) {
				fmt.Fprintf(w, "   The webhook listens on loopback only (127.0.0.1:%d): GitHub reaches it once a reverse\n"+
					"   proxy with TLS on each server forwards /hooks/ to it (docs/git.md, TLS).\n\n", c.Int("port"))
			} else {
				fmt.Fprintf(w, "   Serve it over HTTPS through a reverse proxy on the server (docs/git.md, TLS).\n\n")
			}
			fmt.Fprintf(w, "2. Add each server's deploy key (Settings, Deploy keys, Add deploy key; read access only):\n")
			for _, h := range res.Hosts {
				fmt.Fprintf(w, "     %s: %s\n", h.Host, h.PublicKey)
			}
			fmt.Fprintf(w, "   Submodules: add the same keys to their repositories.\n")
			for _, h := range res.Hosts {
				fmt.Fprintf(w, "\n%s: %s", h.Host, h.Socket)
			}
			fmt.Fprintln(w)
			return nil
		},
	}
}
