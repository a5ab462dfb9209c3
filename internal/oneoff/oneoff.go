// Package oneoff runs one-off processes of an app environment: the
// Procfile's release command, once per deployment before the switch, and
// `jeagent run` (jepush run) in the live release. Each runs as a transient
// systemd unit (systemd-run), so it is logged and accounted like the app's
// own units, with the same user, working directory, environment (config
// vars and the services' variables from their EnvironmentFiles), sandbox
// and limits as the app's units (docs/release.md). Nothing here goes
// through a shell: the command is an argv, and the release command is the
// one argument of /bin/sh -c, as the Procfile's process types are.
package oneoff

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/jecloud/jecloud/internal/appspec"
	"github.com/jecloud/jecloud/internal/appuser"
	"github.com/jecloud/jecloud/internal/configvars"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/jecloud/jecloud/internal/sysd"
)

// Runtime is what a release's processes run with, as the built-in hook that
// runs them knows it (the node hook: its pinned Node.js).
type Runtime struct {
	// Path are directories put before the system's PATH.
	Path []string
	// ReadOnly are paths under the root the process reads (the runtime's
	// directory): the sandbox hides the rest of the root.
	ReadOnly []string
	// Env are more environment variables (NODE_ENV).
	Env map[string]string
}

// Runtimer is a built-in hook that knows the runtime of a release's
// processes; ok is false when the release is not its business.
type Runtimer interface {
	Runtime(root, releaseDir string) (rt Runtime, ok bool, err error)
}

// Process is one one-off process of an app environment.
type Process struct {
	Root       string // /var/cloud
	App, Env   string
	AppDir     string // ROOT/APP/ENV
	ReleaseDir string // the exact release (versions/ID), never `current`
	User       string // the app's user (appuser.Resolve)
	// VarsFile holds the variables the hooks returned for this release
	// (state.Layout.HookVars), read like the units read it; "": none.
	VarsFile string
	Runtime  Runtime
	Limits   appspec.Limits // defaults filled in (Spec.LimitsOf)
	// Vars are more variables, set last (PORT for `run`).
	Vars map[string]string
}

// Environment returns the process's variables, as the app's units set
// them: JECLOUD_APP, JECLOUD_ENV, JECLOUD_VERSION, PATH, HOME, the
// runtime's and Vars. Config vars and the services' variables are not
// here: systemd reads them from their files (Properties).
func (p Process) Environment() map[string]string {
	path := append(append([]string{}, p.Runtime.Path...), "/usr/local/bin", "/usr/bin", "/bin")
	env := map[string]string{
		"JECLOUD_APP":     p.App,
		"JECLOUD_ENV":     p.Env,
		"JECLOUD_VERSION": filepath.Base(p.ReleaseDir),
		"PATH":            strings.Join(path, ":"),
		"HOME":            filepath.Join(p.AppDir, "home"),
	}
	for k, v := range p.Runtime.Env {
		env[k] = v
	}
	for k, v := range p.Vars {
		env[k] = v
	}
	return env
}

// Options returns the unit options of the process, as the app's units
// have them (hooks/node/units.go's service keeps the same; its tests check
// it): user, working directory, the EnvironmentFiles, umask, limits and
// sandbox. The variables of Environment are not among them (systemd-run
// sets them with --setenv, which takes a value as it is).
func (p Process) Options() []*unit.UnitOption {
	s := func(name, value string) *unit.UnitOption { return sysd.Opt("Service", name, value) }
	o := []*unit.UnitOption{
		s("User", p.User),
		s("Group", p.User),
		s("WorkingDirectory", p.ReleaseDir),
		// Services' variables (REDIS_URL, with its password) first, then
		// those the hooks returned for this release, then the config vars,
		// which may override them.
		s("EnvironmentFile", "-"+filepath.Join(p.AppDir, appuser.ServicesEnv)),
	}
	if p.VarsFile != "" {
		o = append(o, s("EnvironmentFile", "-"+p.VarsFile))
	}
	o = append(o,
		s("EnvironmentFile", "-"+filepath.Join(p.AppDir, configvars.FileName)),
		s("UMask", "0027"),
	)
	l := p.Limits
	o = append(o, sysd.Limits(l.Tasks, l.MemoryHigh(), l.Memory, l.CPUWeight)...)
	o = append(o, sysd.Sandbox(filepath.Join(p.AppDir, "data"), filepath.Join(p.AppDir, "home"))...)
	for _, d := range []string{"server.json", "pids", "logs", "hooks.d"} {
		o = append(o, s("InaccessiblePaths", "-"+filepath.Join(p.Root, "sys", d)))
	}
	ro := append([]string{p.ReleaseDir}, p.Runtime.ReadOnly...)
	return append(o,
		s("TemporaryFileSystem", p.Root+":ro"),
		s("BindReadOnlyPaths", strings.Join(ro, " ")),
		s("BindPaths", filepath.Join(p.AppDir, "data")+" "+filepath.Join(p.AppDir, "home")),
	)
}

// Mode is how the process's standard streams are connected.
type Mode int

const (
	// Pipe passes the caller's stdin, stdout and stderr to the process
	// (systemd-run --pipe).
	Pipe Mode = iota
	// PTY gives the process a terminal, forwarded to the caller's
	// (systemd-run --pty: window size changes, Ctrl-C reaches the process).
	PTY
)

// Unit names the transient unit of a one-off process of kind ("release",
// "run-1234"): jecloud-APP_ENV_KIND.service, without an "@", so that the
// hooks, which stop the instances (TYPE@N) the Procfile no longer has,
// leave it alone, and `jeagent ps` lists it while it runs.
func Unit(app, env, kind string) string { return sysd.AppPrefix(app, env) + kind + ".service" }

// SystemdRun returns the systemd-run command line that runs argv as p in
// the transient unit name, waiting for it and collecting it afterwards
// (a failed unit leaves nothing behind); extra are more properties
// ("RuntimeMaxSec=1800"). systemd-run exits with the process's exit status.
func (p Process) SystemdRun(name string, mode Mode, argv []string, extra ...string) ([]string, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("no command to run")
	}
	args := []string{"systemd-run", "--quiet", "--wait", "--collect", "--unit=" + name,
		"--description=" + fmt.Sprintf("%s %s: one-off %s (JeCloud)", p.App, p.Env, strings.TrimSuffix(strings.TrimPrefix(name, sysd.AppPrefix(p.App, p.Env)), ".service"))}
	if mode == PTY {
		args = append(args, "--pty")
	} else {
		args = append(args, "--pipe")
	}
	env := p.Environment()
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.ContainsRune(env[k], '\n') || strings.ContainsRune(env[k], 0) {
			return nil, fmt.Errorf("variable %s: a newline or NUL byte cannot be passed to systemd-run", k)
		}
		args = append(args, "--setenv="+k+"="+env[k])
	}
	for _, o := range p.Options() {
		args = append(args, "--property="+o.Name+"="+o.Value)
	}
	args = append(args, "--property=SyslogIdentifier="+strings.TrimSuffix(name, ".service"))
	for _, x := range extra {
		args = append(args, "--property="+x)
	}
	// The command is looked up in the process's PATH by /bin/sh, not in
	// root's by systemd-run; its arguments stay an argv ("$@"). The
	// service manager replaces $NAME and $$ in a command line: every $ is
	// doubled so that each argument arrives exactly as given.
	cmd := append([]string{"/bin/sh", "-c", `exec "$@"`, "jecloud-run"}, argv...)
	args = append(args, "--")
	for _, a := range cmd {
		args = append(args, strings.ReplaceAll(a, "$", "$$"))
	}
	return args, nil
}

// For returns the process of app environment app/env (its directory
// appDir under root) that runs in releaseDir with the limits of process
// type typ ([limits.TYPE] of spec) and the runtime the first of hooks that
// is a Runtimer and claims the release says (none: the system's PATH).
// The user is the app's (appuser.Resolve).
func For(root, app, env, appDir, releaseDir string, spec *appspec.Spec, typ string, hooks []any) (Process, error) {
	user, err := appuser.Resolve(app, env)
	if err != nil {
		return Process{}, err
	}
	ae := state.AppEnv{App: app, Env: env}
	p := Process{Root: root, App: app, Env: env, AppDir: appDir, ReleaseDir: releaseDir, User: user, Limits: spec.LimitsOf(typ),
		VarsFile: state.Layout{Root: root}.HookVars(ae, filepath.Base(releaseDir))}
	for _, h := range hooks {
		r, ok := h.(Runtimer)
		if !ok {
			continue
		}
		rt, ok, err := r.Runtime(root, releaseDir)
		if err != nil {
			return Process{}, err
		}
		if ok {
			p.Runtime = rt
			break
		}
	}
	return p, nil
}
