package command

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/jecloud/jecloud/internal/sysd"
	"github.com/urfave/cli/v2"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "show the app's journal (its systemd units jecloud-APP_ENV_*)",
		ArgsUsage: "APP ENV",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new lines"},
			&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Value: 100, Usage: "show the last `N` lines"},
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
