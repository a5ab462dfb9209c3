package command

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/jecloud/jecloud/internal/appuser"
	"github.com/jecloud/jecloud/internal/configvars"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/urfave/cli/v2"
)

func configPath(c *cli.Context, ae state.AppEnv) string {
	return filepath.Join(layout(c).AppDir(ae), configvars.FileName)
}

func configCommands() []*cli.Command {
	restart := append([]cli.Flag{
		&cli.BoolFlag{Name: "no-restart", Usage: "apply the change at the next deploy or restart only"},
		&cli.BoolFlag{Name: "stdin", Usage: "read the vars as one JSON object on stdin (keeps values out of argv)"},
	}, waitFlags...)
	return []*cli.Command{
		{
			Name:      "config",
			Usage:     "print the app environment's config vars",
			ArgsUsage: "APP ENV",
			Description: "Config vars live in ROOT/APP/ENV/config.env (mode 0640, root and the app's group),\n" +
				"never in app.json, status or the log.",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print one JSON object"}},
			Action: func(c *cli.Context) error {
				ae, err := appEnvArgs(c, 2, 2)
				if err != nil {
					return err
				}
				vars, err := configvars.Read(configPath(c, ae))
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return json.NewEncoder(c.App.Writer).Encode(vars)
				}
				keys := make([]string, 0, len(vars))
				for k := range vars {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					fmt.Fprintf(c.App.Writer, "%s=%s\n", k, vars[k])
				}
				return nil
			},
		},
		{
			Name:      "config:set",
			Usage:     "set config vars and restart the app with them",
			ArgsUsage: "APP ENV KEY=VALUE...",
			Flags:     restart,
			Action: func(c *cli.Context) error {
				return changeConfig(c, func(vars map[string]string, args []string) error {
					set := map[string]string{}
					if c.Bool("stdin") {
						if err := json.NewDecoder(c.App.Reader).Decode(&set); err != nil {
							return fmt.Errorf("config:set --stdin: want one JSON object of strings: %w", err)
						}
					}
					for _, a := range args {
						k, v, ok := strings.Cut(a, "=")
						if !ok {
							return fmt.Errorf("config:set: %q is not KEY=VALUE", a)
						}
						set[k] = v
					}
					if len(set) == 0 {
						return fmt.Errorf("config:set: give KEY=VALUE pairs")
					}
					for k, v := range set {
						if err := configvars.CheckName(k); err != nil {
							return err
						}
						vars[k] = v
					}
					return nil
				})
			},
		},
		{
			Name:      "config:unset",
			Usage:     "remove config vars and restart the app without them",
			ArgsUsage: "APP ENV KEY...",
			Flags:     restart,
			Action: func(c *cli.Context) error {
				return changeConfig(c, func(vars map[string]string, args []string) error {
					if len(args) == 0 {
						return fmt.Errorf("config:unset: give the names to remove")
					}
					for _, k := range args {
						delete(vars, k)
					}
					return nil
				})
			},
		},
	}
}

// changeConfig edits config.env with fn, then restarts the live version
// unless --no-restart.
func changeConfig(c *cli.Context, fn func(vars map[string]string, args []string) error) error {
	ae, err := appEnvArgs(c, 2, 1<<20)
	if err != nil {
		return err
	}
	path := configPath(c, ae)
	vars, err := configvars.Read(path)
	if err != nil {
		return err
	}
	if err := fn(vars, c.Args().Slice()[2:]); err != nil {
		return err
	}
	gid := -1
	if name, err := appuser.Resolve(ae.App, ae.Env); err == nil {
		if _, g, err := appuser.IDs(name); err == nil {
			gid = g
		}
	}
	if err := configvars.Write(path, vars, gid); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s: config vars saved (%d set)\n", ae, len(vars))
	if c.Bool("no-restart") {
		return nil
	}
	return restartLive(c, ae)
}

// restartLive restarts the live version (a deployment of it, which goes
// straight to the deployed hooks), unless a deployment is pending: that
// one picks the change up.
func restartLive(c *cli.Context, ae state.AppEnv) error {
	var a state.App
	if err := state.Read(layout(c).AppJSON(ae), &a); err != nil {
		if os.IsNotExist(err) {
			return nil // never deployed: the first deploy reads them
		}
		return err
	}
	switch {
	case a.Deployment != nil:
		fmt.Fprintf(c.App.Writer, "%s: the pending deployment of %s will apply the change\n", ae, a.Deployment.Version)
		return nil
	case a.CurrentVersion == "":
		return nil
	}
	fmt.Fprintf(c.App.Writer, "%s: restarting %s\n", ae, a.CurrentVersion)
	return request(c, ae, a.CurrentVersion, false)
}

func scaleCommand() *cli.Command {
	return &cli.Command{
		Name:      "ps:scale",
		Usage:     "set how many instances of each process type run, and apply it",
		ArgsUsage: "APP ENV TYPE=N...",
		Description: "Records the counts in app.json (\"scale\"), where they override jecloud.toml's [scale],\n" +
			"then restarts the live version so that the node hook starts or stops instances.",
		Flags: append([]cli.Flag{&cli.BoolFlag{Name: "no-restart", Usage: "apply at the next deploy or restart only"}}, waitFlags...),
		Action: func(c *cli.Context) error {
			ae, err := appEnvArgs(c, 3, 1<<20)
			if err != nil {
				return err
			}
			set := map[string]int{}
			for _, a := range c.Args().Slice()[2:] {
				typ, num, ok := strings.Cut(a, "=")
				n, err := strconv.Atoi(num)
				if !ok || err != nil || n < 0 || n > state.MaxScale || typ == "" {
					return fmt.Errorf("ps:scale: %q: want TYPE=N with N from 0 to %d, e.g. web=2", a, state.MaxScale)
				}
				set[typ] = n
			}
			l := layout(c)
			if _, err := state.UpdateApp(l.AppJSON(ae), func(a *state.App) error {
				if a.Scale == nil {
					a.Scale = map[string]int{}
				}
				maps.Copy(a.Scale, set)
				return nil
			}); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s: scale recorded in %s\n", ae, l.AppJSON(ae))
			if c.Bool("no-restart") {
				return nil
			}
			return restartLive(c, ae)
		},
	}
}
