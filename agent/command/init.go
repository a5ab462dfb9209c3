package command

import (
	"fmt"
	"os"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/urfave/cli/v2"
)

func initCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "create the state tree (idempotent)",
		Description: "Creates ROOT/sys/{pids,logs,hooks.d} and ROOT/sys/server.json if missing, and removes\n" +
			"leftover temp files of interrupted writes. Safe to run again.",
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
			return nil
		},
	}
}
