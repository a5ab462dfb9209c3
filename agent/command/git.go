package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/util"
	"github.com/jecloud/jecloud/internal/gitdeploy"
	"github.com/jecloud/jecloud/internal/launch"
	"github.com/jecloud/jecloud/internal/proxy"
	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/jecloud/jecloud/internal/sysd"
	"github.com/jecloud/jecloud/systemd"
	"github.com/urfave/cli/v2"
)

func gitCommand() *cli.Command {
	return &cli.Command{
		Name:  "git",
		Usage: "deploy an app environment from git pushes (see docs/git.md)",
		Subcommands: []*cli.Command{{
			Name:      "setup",
			Usage:     "follow a repository's branch: deploy key, webhook secret, webhook socket",
			ArgsUsage: "APP ENV",
			Description: "Reads one JSON object on stdin: {\"secret\": \"...\", \"known_hosts\": \"...\"} (the\n" +
				"webhook's shared secret and the git server's SSH host keys; `jepush git:setup` sends\n" +
				"them). Makes the environment's deploy key the first time (APP/ENV/git/id_ed25519,\n" +
				"root-only), records --repo and --branch in app.json (\"git\"), and where systemd runs\n" +
				"installs and starts jeagent-webhook.socket on --port of the loopback address (a reverse\n" +
				"proxy with TLS forwards to it, docs/git.md), or of all addresses with --listen-all.\n" +
				"Prints the deploy key's public half and the webhook's path.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "repo", Required: true, Usage: "the repository's SSH `URL` (git@github.com:acme/shop.git)"},
				&cli.StringFlag{Name: "branch", Value: "main", Usage: "the `BRANCH` whose pushes deploy"},
				&cli.IntFlag{Name: "port", Value: systemd.DefaultWebhookPort, Usage: "the webhook's `PORT`"},
				&cli.BoolFlag{Name: "listen-all", Usage: "listen on all addresses, in plain HTTP, instead of loopback only (until a reverse proxy gives it TLS)"},
				&cli.BoolFlag{Name: "json", Usage: "print JSON"},
			},
			Action: func(c *cli.Context) error {
				ae, err := appEnvArgs(c, 2, 2)
				if err != nil {
					return err
				}
				var req gitdeploy.SetupRequest
				dec := json.NewDecoder(io.LimitReader(c.App.Reader, 1<<20))
				if err := dec.Decode(&req); err != nil {
					return fmt.Errorf("git setup: stdin must be one JSON object {\"secret\": ..., \"known_hosts\": ...}: %w", err)
				}
				req.Repository, req.Branch = c.String("repo"), c.String("branch")
				if p := c.Int("port"); p < 1 || p > 65535 {
					return fmt.Errorf("--port %d: give 1 to 65535", p)
				}
				l := layout(c)
				host, _ := os.Hostname()
				pub, err := gitdeploy.Setup(l, ae, req, "jecloud-"+ae.App+"-"+ae.Env+"@"+host)
				if err != nil {
					return err
				}
				out := struct {
					PublicKey string `json:"public_key"`
					Path      string `json:"path"`
					Port      int    `json:"port"`
					Socket    string `json:"socket"`
					// Listen is where the socket listens: 127.0.0.1:PORT, or
					// PORT (all addresses); "" when no socket was installed.
					Listen string `json:"listen,omitempty"`
					// Domains are the environment's host names: the front
					// door passes https://DOMAIN/PATH to the webhook.
					Domains []string `json:"domains,omitempty"`
				}{PublicKey: pub, Path: "/hooks/" + ae.App + "/" + ae.Env, Port: c.Int("port")}
				if l.Root == state.DefaultRoot && util.IsRunningSystemd() {
					units := systemd.WebhookUnits(systemd.Exec(), c.Int("port"), c.Bool("listen-all"))
					r, err := sysd.Setup(c.Context, sysd.UnitDir, units, systemd.WebhookSocket)
					if err != nil {
						return err
					}
					out.Socket = r.String()
					out.Listen = "127.0.0.1:" + strconv.Itoa(c.Int("port"))
					if c.Bool("listen-all") {
						out.Listen = strconv.Itoa(c.Int("port"))
					}
				} else {
					out.Socket = "systemd is not running here (or the root is not /var/cloud): run `jeagent webhook --listen ADDR` yourself"
				}
				if routes.Installed(l) {
					// The front door routes the webhook's path from now on.
					if notes, err := proxy.Default.Apply(c.Context, l); err != nil {
						fmt.Fprintf(c.App.ErrWriter, "front door: %v (the roll-forward tries again)\n", err)
					} else {
						for _, n := range notes {
							fmt.Fprintf(c.App.ErrWriter, "front door: %s\n", n)
						}
					}
					out.Domains = hostsOf(l, ae)
				}
				if c.Bool("json") {
					return json.NewEncoder(c.App.Writer).Encode(out)
				}
				fmt.Fprintf(c.App.Writer, "%s follows branch %s of %s\ndeploy key: %s\nwebhook: port %d, path %s\n%s\n",
					ae, req.Branch, req.Repository, out.PublicKey, out.Port, out.Path, out.Socket)
				if out.Listen != "" {
					fmt.Fprintf(c.App.Writer, "listening on %s\n", out.Listen)
				}
				return nil
			},
		}},
	}
}

func webhookCommand() *cli.Command {
	return &cli.Command{
		Name:  "webhook",
		Usage: "serve the git webhook (started by jeagent-webhook.socket)",
		Description: "Serves POST /hooks/APP/ENV on the socket systemd passes (jeagent-webhook.socket), or\n" +
			"on --listen ADDR, and ends after --idle without a request. A push event signed with the\n" +
			"environment's secret, for its repository and branch, and not seen before, is recorded in\n" +
			"app.json; the roll-forward builds and deploys it. See docs/git.md.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Usage: "listen on `ADDR` (host:port) instead of systemd's socket"},
			&cli.DurationFlag{Name: "idle", Value: 30 * time.Second, Usage: "end after `DURATION` without a request (0: never)"},
		},
		Action: func(c *cli.Context) error {
			var ln net.Listener
			if addr := c.String("listen"); addr != "" {
				var err error
				if ln, err = net.Listen("tcp", addr); err != nil {
					return err
				}
			} else {
				lns, err := activation.Listeners()
				if err != nil {
					return err
				}
				if len(lns) != 1 || lns[0] == nil {
					return errors.New("webhook: no socket from systemd (jeagent-webhook.socket starts this): give --listen ADDR to run it by hand")
				}
				ln = lns[0]
			}
			l := layout(c)
			h := &gitdeploy.Webhook{
				Layout: l,
				Start: func(ctx context.Context) (string, error) {
					run, err := launch.Rollforward(ctx, l.Root)
					if err != nil {
						return "", err
					}
					return run.How, nil
				},
				Log: c.App.ErrWriter,
			}
			fmt.Fprintf(c.App.ErrWriter, "webhook: serving on %s\n", ln.Addr())
			return serveUntilIdle(c.Context, ln, h.Server(), c.Duration("idle"))
		},
	}
}

// serveUntilIdle serves srv (its limits set, as gitdeploy.Webhook.Server
// makes it) on ln until ctx ends or, when idle > 0, no request came for
// that long.
func serveUntilIdle(ctx context.Context, ln net.Listener, srv *http.Server, idle time.Duration) error {
	var mu sync.Mutex
	active, last := map[net.Conn]bool{}, time.Now()
	srv.ConnState = func(conn net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		if s == http.StateActive {
			active[conn] = true
		} else {
			delete(active, conn)
		}
		last = time.Now()
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				srv.Close()
				return
			case <-tick.C:
				mu.Lock()
				quiet := idle > 0 && len(active) == 0 && time.Since(last) >= idle
				mu.Unlock()
				if quiet {
					sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					srv.Shutdown(sctx)
					cancel()
					return
				}
			}
		}
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// hostsOf is the host names the front door gives ae: its domains, then
// its default name.
func hostsOf(l state.Layout, ae state.AppEnv) []string {
	var a state.App
	var s state.Server
	state.Read(l.AppJSON(ae), &a)
	state.Read(l.ServerJSON(), &s)
	hosts := append([]string(nil), a.Domains...)
	if s.Proxy != nil {
		if h := routes.DefaultName(ae, s.Proxy.BaseDomain); h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts
}
