package command

import (
	"errors"
	"fmt"
	"os"

	"github.com/coreos/go-systemd/v22/util"
	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/proxy"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/jecloud/jecloud/internal/sysd"
	"github.com/jecloud/jecloud/systemd"
	"github.com/urfave/cli/v2"
)

func initCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "create the state tree and install the systemd timer (idempotent)",
		Description: "Creates ROOT/sys/{pids,logs,hooks.d} and ROOT/sys/server.json if missing, and removes\n" +
			"leftover temp files of interrupted writes. Under systemd, with the default root, it also\n" +
			"installs " + systemd.Service + " and " + systemd.Timer + " into " + sysd.UnitDir + "\n" +
			"(rewritten only when they differ), reloads systemd and enables and starts the timer;\n" +
			"and it bounds the journal with " + sysd.JournaldDropIn + "\n" +
			"(" + sysd.JournaldSummary() + "; a key you set in journald.conf or a drop-in of your own\n" +
			"is left out), restarting systemd-journald when that file changed. And it installs the\n" +
			"front door (docs/routing.md): Debian's haproxy and caddy if missing, run as\n" +
			systemd.HAProxyService + " on ports 80 and 443 and " + systemd.ProxyService + " behind it\n" +
			"on loopback (Debian's own haproxy.service and caddy.service are stopped and disabled).\n" +
			"Safe to run again: a second run changes nothing and says so.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "no-systemd", Usage: "leave systemd alone: no units, no journald drop-in, no front door"},
			&cli.BoolFlag{Name: "no-proxy", Usage: "no front door: leave ports 80 and 443 to a proxy of your own (docs/routing.md)"},
		},
		Action: func(c *cli.Context) error {
			l := layout(c)
			for _, d := range []struct {
				path string
				mode os.FileMode
			}{{l.Root, 0o755}, {l.Sys(), 0o755}, {l.PIDDir(), 0o755}, {l.LogDir(), 0o750}, {l.HooksDir(), 0o755}} {
				if err := os.MkdirAll(d.path, d.mode); err != nil {
					return fmt.Errorf("create %s: %w", d.path, err)
				}
			}
			if _, err := atomicfile.CleanTemps(l.Sys()); err != nil {
				return err
			}
			if _, err := os.Stat(l.ServerJSON()); os.IsNotExist(err) {
				if err := state.Write(l.ServerJSON(), &state.Server{}); err != nil {
					return err
				}
			} else {
				var s state.Server
				if err := state.Read(l.ServerJSON(), &s); err != nil {
					return err
				}
			}
			fmt.Fprintf(c.App.Writer, "initialized %s\n", l.Root)
			switch {
			case c.Bool("no-systemd"):
				return nil
			case l.Root != state.DefaultRoot || !util.IsRunningSystemd():
				// A test, a demo or a container without systemd: nothing to install.
				return nil
			}
			exe := systemd.Exec()
			units := systemd.Units(exe, systemd.Tick(exe))
			dir := sysd.UnitDir
			if sysd.Installed(sysd.PackageUnitDir, units) {
				dir = sysd.PackageUnitDir // the .deb's own units: nothing to write over them
			}
			r, err := sysd.Setup(c.Context, dir, units, systemd.Timer)
			if r.Changed() || err == nil {
				fmt.Fprintln(c.App.Writer, r)
			}
			jr, jerr := sysd.SetupJournald(c.Context)
			if s := jr.String(); s != "" {
				fmt.Fprintln(c.App.Writer, s)
			}
			if c.Bool("no-proxy") {
				return errors.Join(err, jerr)
			}
			perr := proxy.Setup(c.Context, l, sysd.UnitDir, c.App.Writer)
			return errors.Join(err, jerr, perr)
		},
	}
}
