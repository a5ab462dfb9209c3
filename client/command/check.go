package command

import (
	"fmt"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jecloud/jecloud/internal/appspec"
	"github.com/jecloud/jecloud/internal/config"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "check DIR's jecloud.toml, Procfile and package.json as a push does, without sending anything",
		ArgsUsage: "[DIR]",
		Description: "Reads DIR (default: the current directory) as the agent will: every key of jecloud.toml\n" +
			"in every table (an unknown key is named with its file:line and the nearest valid key),\n" +
			"the type of every value, the Procfile's syntax and process types, and package.json's\n" +
			"engines.node. Every push runs the same checks before a byte is sent.\n" +
			"engines.node is checked for its syntax and for bounds that contradict each other;\n" +
			"whether a Node.js release satisfies it is known only on the server, from its mirror's\n" +
			"list of releases. Exit status 0 when all is well, 2 with the first problem otherwise.",
		Action: func(c *cli.Context) error {
			if err := args(c, 0, 1, "[DIR]"); err != nil {
				return err
			}
			dir := c.Args().Get(0)
			if dir == "" {
				dir = "."
			}
			cfg, spec, err := checkDir(dir)
			if err != nil {
				return err
			}
			w := c.App.Writer
			if cfg.File != "" {
				envs := make([]string, 0, len(cfg.Envs))
				for n := range cfg.Envs {
					envs = append(envs, n)
				}
				sort.Strings(envs)
				fmt.Fprintf(w, "%s: ok (app %s; environments: %s)\n", cfg.File, cfg.App, orNone(envs))
			} else {
				fmt.Fprintf(w, "no %s in %s: app %s (from %s)\n", config.FileName, dir, cfg.App, cfg.AppFrom)
			}
			types := spec.ProcessNames()
			for i, t := range types {
				if n := spec.Instances(t); n != 1 {
					types[i] = fmt.Sprintf("%s×%d", t, n)
				}
			}
			fmt.Fprintf(w, "process types: %s\n", orNone(types))
			if spec.Release != "" {
				fmt.Fprintf(w, "release command: %q, once per deploy before the switch (time limit %s)\n", spec.Release, spec.ReleaseTimeout())
			}
			if spec.Node != nil && spec.Node.Engine != "" {
				fmt.Fprintf(w, "engines.node %q: a valid version or range (whether a Node.js release satisfies it is checked by the server)\n", spec.Node.Engine)
			}
			return nil
		},
	}
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}

// checkDir reads dir's jecloud.toml, Procfile and package.json as the
// agent will, so that a push fails before a byte is sent (usage errors).
func checkDir(dir string) (*config.Config, *appspec.Spec, error) {
	cfg, err := config.Load(dir)
	if err != nil {
		return nil, nil, usageError{err}
	}
	spec, err := appspec.Check(dir)
	if err != nil {
		return nil, nil, usageError{err}
	}
	return cfg, spec, nil
}
