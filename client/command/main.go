// Package command holds jepush's commands, one file each; they parse the
// command line and leave the work to internal/push and its neighbours.
package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/jecloud/jecloud/internal/cliargs"
	"github.com/jecloud/jecloud/internal/completion"
	"github.com/jecloud/jecloud/internal/push"
	"github.com/jecloud/jecloud/internal/suggest"
	"github.com/jecloud/jecloud/internal/version"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitFailed      = 1   // a deploy failed, a server could not be reached...
	ExitUsage       = 2   // bad command line or config file
	ExitInterrupted = 130 // Ctrl-C; what was started on a server goes on
)

// Main runs jepush with os.Args and returns its exit code. The first Ctrl-C
// stops watching (the deploy goes on on the server); a second one kills.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C ends jepush at once
	}()
	return Run(ctx, args, os.Stdout, os.Stderr)
}

// Run runs jepush with args (args[0] is the program's name) and returns its
// exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if ok, asJSON := version.Asked(args); ok {
		version.Print(stdout, "jepush", asJSON)
		return ExitOK
	}
	app := newApp(stdout, stderr)
	if completion.Asked(args) {
		// A shell asking what may come next: nothing is run.
		return report(stderr, app.RunContext(ctx, args))
	}
	if err := unknownCommand(app, args); err != nil {
		return report(stderr, err)
	}
	args = helpOnly(withDefaultCommand(app, args))
	if f := cliargs.MissingValue(app, args); f != "" {
		return report(stderr, usage("%s needs a value: %s VALUE (see: jepush %s --help)", f, f, args[1]))
	}
	err := app.RunContext(ctx, cliargs.Permute(app, args))
	return report(stderr, err)
}

// App is jepush's command line (for its man page and completion scripts).
func App() *cli.App { return newApp(os.Stdout, os.Stderr) }

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:      "jepush",
		Usage:     "deploy an app directory to your own servers",
		UsageText: "jepush DIR ENV [--host HOST]... [--local] [options]\njepush COMMAND [options] [arguments]",
		Description: "jepush DIR ENV bundles DIR, uploads it to the servers of environment ENV\n" +
			"(from DIR/jecloud.toml, or --host) and waits until the new version is live.\n" +
			"Flags may come before or after the arguments. See docs/jepush.md.",
		Version:   version.Get("jepush").Version,
		Writer:    stdout,
		ErrWriter: stderr,
		Suggest:   true,
		// For the completion scripts (jepush completion SHELL).
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {}, // Run reports errors
		Commands: append([]*cli.Command{
			pushCommand(),
			checkCommand(),
			bundleCommand(),
			statusCommand(),
			rollbackCommand(),
			logsCommand(),
			psCommand(),
			releasesCommand(),
			restartCommand(),
			runCommand(),
			serversCommand(),
			scaleServersCommand(),
			destroyCommand(),
			healCommand(),
			appsDestroyCommand(),
		}, slices.Concat(configCommands(), []*cli.Command{scaleCommand(), gitSetupCommand()}, domainsCommands(), maintenanceCommands(), []*cli.Command{completion.Command("jepush")})...),
	}
	for _, c := range app.Commands {
		c.OnUsageError = func(c *cli.Context, err error, _ bool) error {
			return usageError{fmt.Errorf("%w (see: jepush %s --help)", err, c.Command.Name)}
		}
	}
	return app
}

// withDefaultCommand puts "push" in front of the arguments when they do
// not start with a command: `jepush ./app prod` is `jepush push ./app prod`.
func withDefaultCommand(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	first := args[1]
	if slices.Contains([]string{"-h", "--help", "-v", "--version", "help", "h"}, first) {
		return args
	}
	for _, c := range app.Commands {
		if c.HasName(first) {
			return args
		}
	}
	return append([]string{args[0], "push"}, args[1:]...)
}

// unknownCommand refuses a first argument that is close to a command's
// name and is not a directory: jepush's default command would take it for
// the app directory ("app directory: stat stauts").
func unknownCommand(app *cli.App, args []string) error {
	if len(args) < 2 || strings.HasPrefix(args[1], "-") || strings.ContainsAny(args[1], "/.") {
		return nil
	}
	first := args[1]
	var names []string
	for _, c := range app.Commands {
		if c.HasName(first) {
			return nil
		}
		names = append(names, c.Names()...)
	}
	if _, err := os.Stat(first); err == nil {
		return nil
	}
	if near := suggest.Nearest(first, names); near != "" {
		return usage("%q is neither a command nor a directory: did you mean %q? (jepush --help lists the commands)", first, near)
	}
	return nil
}

// helpOnly reduces `jepush CMD ARGS... --help` to `jepush CMD --help`:
// cli would take the arguments for help topics.
func helpOnly(args []string) []string {
	if len(args) < 3 {
		return args
	}
	for _, a := range args[2:] {
		if a == "--" {
			break
		}
		if a == "-h" || a == "--help" {
			return []string{args[0], args[1], "--help"}
		}
	}
	return args
}

// usageError is a mistake on the command line or in the config file.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// usage wraps err as a usage error (exit 2).
func usage(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitStatus is the exit status of a command jepush ran for the user
// (jepush run): jepush exits with it and prints nothing more.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// report prints err and returns the exit code for it.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return ExitOK
	}
	var ue usageError
	var es exitStatus
	switch {
	case errors.As(err, &es):
		return int(es)
	case errors.Is(err, push.ErrInterrupted) || errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "jepush: %v\n", err)
		return ExitInterrupted
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "jepush: %v\n", err)
		return ExitUsage
	}
	fmt.Fprintf(stderr, "jepush: error: %v\n", err)
	return ExitFailed
}

// args checks the number of positional arguments.
func args(c *cli.Context, min, max int, names string) error {
	if n := c.NArg(); n < min || n > max {
		return usage("%s expects %s, got %d argument(s) (see: jepush %s --help)", c.Command.Name, names, n, c.Command.Name)
	}
	return nil
}
