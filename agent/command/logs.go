package command

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"

	"github.com/urfave/cli/v2"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "show the app's journal (its systemd units jecloud-APP-ENV-*)",
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
			args := []string{"--unit", "jecloud-" + ae.App + "-" + ae.Env + "-*", "--output", "short-iso",
				"--lines", strconv.Itoa(c.Int("lines")), "--no-pager"}
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
