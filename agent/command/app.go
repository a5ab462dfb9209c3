// Package command holds jeagent's commands, one file each; they are thin
// over the packages under internal/.
package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jecloud/jecloud/hooks/mail"
	"github.com/jecloud/jecloud/hooks/mongodb"
	"github.com/jecloud/jecloud/hooks/node"
	"github.com/jecloud/jecloud/hooks/packages"
	"github.com/jecloud/jecloud/hooks/redis"
	"github.com/jecloud/jecloud/internal/cliargs"
	"github.com/jecloud/jecloud/internal/completion"
	"github.com/jecloud/jecloud/internal/gitdeploy"
	"github.com/jecloud/jecloud/internal/hook"
	"github.com/jecloud/jecloud/internal/names"
	"github.com/jecloud/jecloud/internal/proxy"
	"github.com/jecloud/jecloud/internal/rollforward"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/jecloud/jecloud/internal/suggest"
	"github.com/jecloud/jecloud/internal/version"
	"github.com/urfave/cli/v2"
	"gopkg.in/natefinch/lumberjack.v2"
)

// exitError carries an exit status other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

// App is jeagent's command line.
func App() *cli.App {
	return &cli.App{
		Name:    "jeagent",
		Usage:   "roll this server forward to what /var/cloud asks for",
		Version: version.Get("jeagent").Version,
		Description: "jeagent owns the state under its root (/var/cloud): sys/server.json and one APP/ENV/app.json\n" +
			"per app environment. Deploys, rollbacks and hand edits of app.json are carried out by\n" +
			"`jeagent rollforward`, which a systemd timer runs every minute. See docs/agent.md.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Value: configuredRoot, EnvVars: []string{"JECLOUD_ROOT"},
				Usage: "the state tree `DIR`"},
		},
		Commands: append([]*cli.Command{
			initCommand(), deployCommand(), destroyCommand(), rollforwardCommand(), statusCommand(),
			rollbackCommand(), releasesCommand(), restartCommand(), runCommand(), receiveCommand(), hasCommand(), manifestCommand(), logsCommand(), hookCommand(),
			backupCommand(), restoreCommand(), backupsCommand(), syncCommand(), followCommand(), psCommand(), placeCommand(),
			gitCommand(), webhookCommand(),
		}, slices.Concat(configCommands(), []*cli.Command{scaleCommand()}, domainsCommands(), maintenanceCommands(), []*cli.Command{completion.Command("jeagent")})...),
		Before:               restrict,
		HideHelpCommand:      true,
		EnableBashCompletion: true, // for `jeagent completion SHELL`
		ExitErrHandler:       func(*cli.Context, error) {},
	}
}

// Main runs jeagent with args and returns the exit status.
func Main(args []string) int {
	if ok, asJSON := version.Asked(args); ok {
		version.Print(os.Stdout, "jeagent", asJSON)
		return 0
	}
	app := App()
	var err error
	switch {
	case completion.Asked(args): // a shell asking what may come next: nothing is run
		err = app.Run(args)
	default:
		if err = checkArgs(app, args); err == nil {
			err = app.Run(cliargs.Permute(app, args))
		}
	}
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) && ee.err == nil {
		return ee.code // a status with nothing to say (jeagent run: the command's own)
	}
	fmt.Fprintf(os.Stderr, "jeagent: %v\n", err)
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func layout(c *cli.Context) state.Layout { return state.Layout{Root: c.String("root")} }

// appEnvArgs reads APP ENV from the positional arguments.
func appEnvArgs(c *cli.Context, min, max int) (state.AppEnv, error) {
	n := c.NArg()
	if n < min || n > max {
		return state.AppEnv{}, fmt.Errorf("%s: want %d to %d arguments, got %d; see `jeagent %s --help`", c.Command.Name, min, max, n, c.Command.Name)
	}
	ae := state.AppEnv{App: c.Args().Get(0), Env: c.Args().Get(1)}
	return ae, ae.Check()
}

// appEnvVersionArgs reads APP ENV ID, the arguments of deploy, receive and has.
func appEnvVersionArgs(c *cli.Context) (state.AppEnv, string, error) {
	ae, err := appEnvArgs(c, 3, 3)
	if err != nil {
		return ae, "", err
	}
	id, err := versionArg(c, 2)
	return ae, id, err
}

func versionArg(c *cli.Context, i int) (string, error) {
	v := c.Args().Get(i)
	return v, names.CheckVersion(v)
}

// builtins are the built-in hooks, in the order they run.
// OS packages come first (native modules need their libraries before npm
// ci), then services, so that the app's units find them.
func builtins() []hook.Hook {
	return []hook.Hook{packages.New(), redis.New(), mongodb.New(), mail.New(), node.New()}
}

// hooks returns the built-in hooks, then the executables of hooks.d.
func hooks(l state.Layout) ([]hook.Hook, error) {
	user, err := hook.Dir(l.HooksDir(), 30*time.Minute)
	return append(builtins(), user...), err
}

// diskReserve is the free space the agent keeps on the disk of /var/cloud
// for its state files, logs and the other apps: a push, a git build or an
// extraction that would leave less is refused or stopped.
const diskReserve = 64 << 20

// engine builds the roll-forward engine for this tree, logging to the
// size-capped log file and, unless quiet, to stderr.
func engine(c *cli.Context, quiet bool) *rollforward.Engine {
	l := layout(c)
	var logw io.Writer = io.Discard
	if err := os.MkdirAll(l.LogDir(), 0o755); err == nil {
		// lumberjack: size-capped rotation with numbered backups, widely used,
		// so the log can never fill the disk.
		logw = &lumberjack.Logger{Filename: l.LogFile(), MaxSize: 10, MaxBackups: 3}
	}
	if !quiet {
		logw = io.MultiWriter(logw, os.Stderr)
	}
	return &rollforward.Engine{
		Layout:      l,
		Log:         logw,
		Hooks:       func() ([]hook.Hook, error) { return hooks(l) },
		DiskReserve: diskReserve,
		Fault:       faultFromEnv(),
		BuildGit:    (&gitdeploy.Builder{Layout: l, Log: logw, Reserve: diskReserve}).Build,
		Route:       func(ctx context.Context) ([]string, error) { return proxy.Default.Apply(ctx, l) },
		Release:     releaser(),
		Restarts:    rollforward.UnitRestarts(l),
	}
}

// checkArgs refuses, before cli parses them, a mistyped command ("did you
// mean") and a flag without its value (named, where Permute would hand it
// the next argument).
func checkArgs(app *cli.App, args []string) error {
	if f := cliargs.MissingValue(app, args); f != "" {
		return &exitError{2, fmt.Errorf("%s needs a value: %s VALUE (see: jeagent --help)", f, f)}
	}
	// The first argument that is not a global flag (or its value) is the command.
	for i := 1; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			if a == "--root" {
				i++
			}
			continue
		}
		if a == "help" || a == "h" {
			return nil
		}
		var names []string
		for _, c := range app.Commands {
			if c.HasName(a) {
				return nil
			}
			names = append(names, c.Names()...)
		}
		msg := fmt.Sprintf("no command %q", a)
		if near := suggest.Nearest(a, names); near != "" {
			msg += fmt.Sprintf(": did you mean %q?", near)
		}
		return &exitError{2, fmt.Errorf("%s (jeagent --help lists the commands)", msg)}
	}
	return nil
}
