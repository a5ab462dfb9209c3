package command

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jecloud/jecloud/internal/accesslog"
	"github.com/jecloud/jecloud/internal/proxy"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/jecloud/jecloud/internal/sysd"
	"github.com/urfave/cli/v2"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "show the app's journal (its systemd units jecloud-APP_ENV_*), or with --proxy the front door's access log of it",
		ArgsUsage: "APP ENV",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new lines"},
			&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Value: 100, Usage: "show the last `N` lines"},
			&cli.BoolFlag{Name: "proxy", Usage: "show the front door's access log of the app environment instead: one line per request"},
			&cli.BoolFlag{Name: "json", Usage: "with --proxy: each request as the front door logged it (one JSON object a line)"},
		},
		Action: func(c *cli.Context) error {
			ae, err := appEnvArgs(c, 2, 2)
			if err != nil {
				return err
			}
			jc, err := exec.LookPath("journalctl")
			if err != nil {
				return fmt.Errorf("journalctl not found: app logs live in systemd's journal")
			}
			if c.Bool("proxy") {
				return proxyLogs(c, jc, ae)
			}
			if c.Bool("json") {
				return fmt.Errorf("logs: --json goes with --proxy (the app's own lines are text)")
			}
			// Its units, exactly (issue #17: jecloud-shop-prod-* was
			// shop/prod-eu's too), and those still named the old way.
			args := []string{"--unit", sysd.AppPrefix(ae.App, ae.Env) + "*"}
			legacy, _ := sysd.LegacyUnits(sysd.UnitDir, ae.App, ae.Env)
			for _, u := range legacy {
				args = append(args, "--unit", strings.Replace(u, "@.", "@*.", 1))
			}
			args = append(args, "--output", "short-iso", "--lines", strconv.Itoa(c.Int("lines")), "--no-pager")
			if c.Bool("follow") {
				args = append(args, "--follow")
			}
			cmd := exec.CommandContext(c.Context, jc, args...)
			cmd.Stdout, cmd.Stderr = c.App.Writer, os.Stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("journalctl %v: %w (is systemd's journal running on this server?)", args, err)
			}
			return nil
		},
	}
}

// proxyLogs shows the front door's access log of ae: the lines of the
// proxy's journal under its logger (journalctl's --grep keeps them, so that
// --lines counts requests of this app environment only), oldest first,
// readable or raw. With --follow, a second journalctl then follows from the
// newest entry shown (journalctl prints --grep's last N newest first, so
// one run cannot both order them and follow).
func proxyLogs(c *cli.Context, jc string, ae state.AppEnv) error {
	logger := proxy.AccessLogger(ae.App, ae.Env)
	raw := c.Bool("json")
	base := []string{"--unit", proxy.Unit, "--output", "cat", "--no-pager", "--grep", `"logger":"` + regexp.QuoteMeta(logger) + `"`}
	var ls []accesslog.Line
	err := journal(c, jc, append(base, "--lines", strconv.Itoa(c.Int("lines"))), func(r io.Reader) error {
		var err error
		ls, err = accesslog.Collect(r, logger)
		return err
	})
	if err != nil {
		return err
	}
	var last time.Time
	for _, l := range ls {
		if err := l.Write(c.App.Writer, raw); err != nil {
			return err
		}
		last = l.Time()
	}
	if !c.Bool("follow") {
		if len(ls) == 0 {
			fmt.Fprintf(os.Stderr, "%s: no requests in the front door's log (%s, logger %s)\n", ae, proxy.Unit, logger)
		}
		return nil
	}
	follow := append(base, "--follow", "--lines", "0")
	if !last.IsZero() {
		// From the newest entry shown (Caddy's time; the journal's is a
		// little later): Copy skips what was shown.
		follow = append(base, "--follow", "--since", last.UTC().Format("2006-01-02 15:04:05.000000")+" UTC")
	}
	return journal(c, jc, follow, func(r io.Reader) error { return accesslog.Copy(c.App.Writer, r, logger, raw, last) })
}

// journal runs journalctl with args and hands its output to read. Exit
// status 1 with nothing on stderr is --grep's "no match".
func journal(c *cli.Context, jc string, args []string, read func(io.Reader) error) error {
	cmd := exec.CommandContext(c.Context, jc, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	readErr := read(out)
	io.Copy(io.Discard, out)
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() == 1 && stderr.Len() == 0:
		return readErr
	case err != nil && c.Context.Err() != nil:
		return nil // interrupted while following
	case err != nil:
		return fmt.Errorf("journalctl %v: %w: %s (is systemd's journal running on this server?)", args, err, strings.TrimSpace(stderr.String()))
	}
	return readErr
}
