package command

import (
	"fmt"
	"os"
	"strings"

	"github.com/jecloud/jecloud/internal/hook"
	"github.com/urfave/cli/v2"
)

func hookCommand() *cli.Command {
	return &cli.Command{
		Name:      "hook",
		Usage:     "run a built-in hook as an executable speaking the hook protocol",
		ArgsUsage: "NAME PHASE",
		Description: "Reads the request JSON on stdin and JECLOUD_* variables, like any hook in hooks.d\n" +
			"(docs/hooks.md). Useful to debug a built-in hook by hand. Built-in hooks: " + builtinNames() + ".",
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return fmt.Errorf("hook: want NAME PHASE, got %d arguments", c.NArg())
			}
			for _, h := range builtins() {
				if h.Name() == c.Args().Get(0) {
					if code := hook.Serve(h, c.Args().Slice()[1:], os.Stdin, c.App.Writer, os.Stderr); code != 0 {
						return &exitError{code, fmt.Errorf("hook %s %s failed", h.Name(), c.Args().Get(1))}
					}
					return nil
				}
			}
			return fmt.Errorf("no built-in hook %q: the built-in hooks are %s", c.Args().Get(0), builtinNames())
		},
	}
}

// builtinNames lists the built-in hooks, in the order they run.
func builtinNames() string {
	var names []string
	for _, h := range builtins() {
		names = append(names, h.Name())
	}
	return strings.Join(names, ", ")
}
