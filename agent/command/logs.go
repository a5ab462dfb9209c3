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
	"github.com/jecloud/jecloud/internal/appspec"
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
			&cli.StringFlag{Name: "type", Usage: "only the lines of process type `TYPE` (web, worker, ...)"},
			&cli.StringFlag{Name: "since", Usage: "only lines from `TIME` on, as journalctl reads it (\"2026-12-04 10:00\", \"1 hour ago\", \"15 min ago\", today)"},
			&cli.StringFlag{Name: "grep", Usage: "only lines matching `PATTERN` (journalctl's --grep: a PCRE, case-insensitive when all lower case)"},
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
			typ := c.String("type")
			if typ != "" {
				if err := appspec.CheckProcessType(typ); err != nil {
					return fmt.Errorf("logs --type: %w", err)
				}
			}
			if c.Bool("proxy") {
				if typ != "" || c.IsSet("grep") {
					return fmt.Errorf("logs: --type and --grep go with the app's own lines, not --proxy's requests (--since does)")
				}
				return proxyLogs(c, jc, ae)
			}
			if c.Bool("json") {
				return fmt.Errorf("logs: --json goes with --proxy (the app's own lines are text)")
			}
			// Its units, exactly (issue #17: jecloud-shop-prod-* was
			// shop/prod-eu's too), and those still named the old way.
			// With --type, its instances only (TYPE@N, TYPE@PORT).
			pattern := "*"
			if typ != "" {
				pattern = typ + "@*"
			}
			args := []string{"--unit", sysd.AppPrefix(ae.App, ae.Env) + pattern}
			legacy, _ := sysd.LegacyUnits(sysd.UnitDir, ae.App, ae.Env)
			for _, u := range legacy {
				if typ != "" && !strings.HasSuffix(strings.SplitN(u, "@", 2)[0], "-"+typ) {
					continue
				}
				args = append(args, "--unit", strings.Replace(u, "@.", "@*.", 1))
			}
			args = append(args, "--output", "short-iso", "--lines", strconv.Itoa(c.Int("lines")), "--no-pager")
			args = append(args, filterArgs(c)...)
			if c.Bool("follow") {
				args = append(args, "--follow")
			}
			cmd := exec.CommandContext(c.Context, jc, args...)
			var stderr strings.Builder
			cmd.Stdout, cmd.Stderr = c.App.Writer, &stderr
			err = cmd.Run()
			var ee *exec.ExitError
			switch {
			case errors.As(err, &ee) && ee.ExitCode() == 1 && strings.Contains(stderr.String(), "Failed to add filter for units"):
				// No unit of that name ever wrote to the journal.
				what := "its units"
				if typ != "" {
					what = "process type " + typ
				}
				fmt.Fprintf(os.Stderr, "%s: the journal has no lines of %s (%s)\n", ae, what, args[1])
				return nil
			case errors.As(err, &ee) && ee.ExitCode() == 1 && c.IsSet("grep") && stderr.Len() == 0:
				return nil // --grep matched nothing ("-- No entries --")
			}
			os.Stderr.WriteString(stderr.String())
			if err != nil {
				return fmt.Errorf("journalctl %v: %w (is systemd's journal running on this server?)", args, err)
			}
			return nil
		},
	}
}

// filterArgs are journalctl's own filters the user asked for, each one
// argument (--since=VALUE), so that a value can never be read as a flag.
func filterArgs(c *cli.Context) []string {
	var args []string
	for _, f := range []string{"since", "grep"} {
		if c.IsSet(f) {
			args = append(args, "--"+f+"="+c.String(f))
		}
	}
	return args
}

// proxyLogs shows the front door's access log of ae: the lines of
// HAProxy's journal under its logger (journalctl's --grep keeps them, so that
// --lines counts requests of this app environment only), oldest first,
// readable or raw. With --follow, a second journalctl then follows from the
// newest entry shown (journalctl prints --grep's last N newest first, so
// one run cannot both order them and follow).
func proxyLogs(c *cli.Context, jc string, ae state.AppEnv) error {
	logger := proxy.AccessLogger(ae.App, ae.Env)
	raw := c.Bool("json")
	base := []string{"--unit", proxy.HAProxyUnit, "--output", "cat", "--no-pager", "--grep", `"logger":"` + regexp.QuoteMeta(logger) + `"`}
	var ls []accesslog.Line
	base = append(base, filterArgs(c)...)
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
			fmt.Fprintf(os.Stderr, "%s: no requests in the front door's log (%s, logger %s)\n", ae, proxy.HAProxyUnit, logger)
		}
		return nil
	}
	follow := append(base, "--follow", "--lines", "0")
	if !last.IsZero() {
		// From the newest entry shown (HAProxy's time; the journal's is a
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
