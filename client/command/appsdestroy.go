package command

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

func appsDestroyCommand() *cli.Command {
	return &cli.Command{
		Name:      "apps:destroy",
		Usage:     "remove ENV's app from its servers: units, user, ports, domains, releases (data stays unless --data)",
		ArgsUsage: "ENV",
		Description: "Like `heroku apps:destroy`: runs `jeagent destroy APP ENV` on each server in turn.\n" +
			"The app's processes stop and their units go, with its user, its ports, its routes in\n" +
			"the front door (its domains answer 404 from then on), its Redis and MongoDB units, its\n" +
			"releases and config vars. The services' data (Redis, MongoDB) and the app's data\n" +
			"directory stay for a later push to find, unless --data; backups on S3 always stay.\n" +
			"The servers themselves stay (for EC2, `jepush destroy ENV` terminates them).\n\n" +
			"On a terminal it asks you to type the app's name. Without one (a script, CI) give\n" +
			"--confirm APP, the app's name, or it refuses.\n\n" +
			"Examples:\n  jepush apps:destroy staging\n  jepush apps:destroy staging --confirm myapp --data",
		Flags: append(targetFlags(), dirFlag(),
			&cli.StringFlag{Name: "confirm", Usage: "the app's `NAME`: confirms without asking (needed without a terminal)"},
			&cli.BoolFlag{Name: "data", Usage: "remove the data too (Redis, MongoDB, the app's data directory)"},
		),
		Action: func(c *cli.Context) error {
			if err := args(c, 1, 1, "ENV"); err != nil {
				return err
			}
			cl, err := newClient(c, c.String("dir"), c.Args().Get(0))
			if err != nil {
				return err
			}
			what := "its data stays"
			if c.Bool("data") {
				what = "ITS DATA TOO"
			}
			var hosts []string
			for _, t := range cl.Targets {
				hosts = append(hosts, t.Name())
			}
			fmt.Fprintf(c.App.ErrWriter, "this removes %s/%s from %s (%s)\n", cl.App, cl.Env, strings.Join(hosts, ", "), what)
			tty := term.IsTerminal(int(os.Stdin.Fd()))
			if err := confirmDestroy(cl.App, c.String("confirm"), c.IsSet("confirm"), tty, os.Stdin, c.App.ErrWriter); err != nil {
				return err
			}
			if err := cl.Destroy(c.Context, c.Bool("data")); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s/%s destroyed\n", cl.App, cl.Env)
			return nil
		},
	}
}

// confirmDestroy checks that the user confirmed destroying app: --confirm
// APP when given (set), else, on a terminal (tty), the app's name typed
// at the prompt; without a terminal and without --confirm it refuses.
func confirmDestroy(app, confirm string, set, tty bool, in io.Reader, prompt io.Writer) error {
	switch {
	case set && confirm == app:
		return nil
	case set:
		return usage("--confirm %q is not the app's name, %q: nothing was destroyed (give --confirm %s)", confirm, app, app)
	case !tty:
		return usage("apps:destroy needs a confirmation and there is no terminal to ask on: give --confirm %s (the app's name); nothing was destroyed", app)
	}
	fmt.Fprintf(prompt, "type the app's name, %q, to go on: ", app)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		return fmt.Errorf("not confirmed (%v): nothing was destroyed", err)
	}
	if got := strings.TrimSpace(line); got != app {
		return fmt.Errorf("not confirmed: %q is not %q: nothing was destroyed", got, app)
	}
	return nil
}
