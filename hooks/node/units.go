package node

import (
	"fmt"
	"github.com/jecloud/jecloud/internal/appspec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
	"github.com/jecloud/jecloud/internal/appuser"
	"github.com/jecloud/jecloud/internal/configvars"
	"github.com/jecloud/jecloud/internal/sysd"
)

// unitSet is what one app environment runs: its unit files by name.
type unitSet struct {
	prefix string            // "jecloud-APP_ENV_" (sysd.AppPrefix)
	files  map[string]string // unit file name -> content
}

// appUnits describes how to render the units of one release.
type appUnits struct {
	App, Env   string
	User       string
	ReleaseDir string // the exact release, not `current`: a unit names what it runs
	NodeBin    string // the pinned Node.js bin dir ("" for an app without a package.json: its runtime is the server's)
	Root       string // /var/cloud
	AppDir     string // /var/cloud/APP/ENV
	Port       int    // the web port
	Socket     bool   // the web process gets its socket from systemd (zero-downtime restarts)
	Proxied    bool   // the web instances are behind the front door, each on its own port (one unit file each, not a template)
	Processes  map[string]string
	VarsFile   string                          // the variables the hooks returned for this release (an EnvironmentFile)
	Grace      func(typ string) time.Duration  // how long a process type gets to finish on SIGTERM
	Limits     func(typ string) appspec.Limits // a process type's memory, tasks and CPU weight
}

// prefix starts the names of the app environment's units, and of no other
// app environment's: "jecloud-APP_ENV_".
func (a appUnits) prefix() string { return sysd.AppPrefix(a.App, a.Env) }

// grace is how long a process of type typ may take to end after SIGTERM.
func (a appUnits) grace(typ string) time.Duration {
	if a.Grace == nil {
		return appspec.DefaultGrace
	}
	return a.Grace(typ)
}

// limits are what each instance of process type typ may use.
func (a appUnits) limits(typ string) appspec.Limits {
	if a.Limits == nil {
		return (&appspec.Spec{}).LimitsOf(typ)
	}
	return a.Limits(typ)
}

// serviceName is the template of a process type: jecloud-APP_ENV_TYPE@.service.
func (a appUnits) serviceName(typ string) string { return a.prefix() + typ + "@.service" }
func (a appUnits) socketName(typ string) string  { return a.prefix() + typ + "@.socket" }

// instance names instance i (1-based) of a template unit.
func instance(template string, i int) string {
	return strings.Replace(template, "@.", "@"+strconv.Itoa(i)+".", 1)
}

func (a appUnits) render() unitSet {
	s := unitSet{prefix: a.prefix(), files: map[string]string{}}
	types := make([]string, 0, len(a.Processes))
	for t := range a.Processes {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		if t == "web" && a.Proxied {
			continue
		}
		s.files[a.serviceName(t)] = serialize(a.service(t))
		if t == "web" && a.Socket {
			s.files[a.socketName(t)] = serialize(a.socket())
		}
	}
	return s
}

var opt, serialize = sysd.Opt, sysd.Serialize

// environment returns the process's variables, sorted, without secrets:
// config vars come from an EnvironmentFile readable only by root and the app.
func (a appUnits) environment(typ string) []string {
	env := map[string]string{
		"JECLOUD_APP":     a.App,
		"JECLOUD_ENV":     a.Env,
		"JECLOUD_VERSION": filepath.Base(a.ReleaseDir),
		"PATH":            "/usr/local/bin:/usr/bin:/bin",
		"HOME":            filepath.Join(a.AppDir, "home"),
	}
	if a.NodeBin != "" {
		env["NODE_ENV"] = "production"
		env["PATH"] = a.NodeBin + ":" + filepath.Join(a.ReleaseDir, "node_modules", ".bin") + ":" + env["PATH"]
	}
	if typ == "web" {
		env["PORT"] = strconv.Itoa(a.Port)
	}
	var out []string
	for k, v := range env {
		out = append(out, systemdQuote(k+"="+v))
	}
	sort.Strings(out)
	return out
}

func (a appUnits) service(typ string) []*unit.UnitOption {
	o := []*unit.UnitOption{
		opt("Unit", "Description", fmt.Sprintf("%s %s: %s process %%i (JeCloud)", a.App, a.Env, typ)),
		opt("Unit", "After", "network-online.target"),
		opt("Unit", "Wants", "network-online.target"),
		// Restart forever, paced: the default burst limit would fail the
		// unit (and close its socket) after 5 crashes in 10 s.
		opt("Unit", "StartLimitIntervalSec", "0"),
	}
	if typ == "web" && a.Socket {
		o = append(o, opt("Unit", "Requires", a.prefix()+typ+"@%i.socket"),
			opt("Unit", "After", a.prefix()+typ+"@%i.socket"))
	}
	o = append(o,
		opt("Service", "Type", "simple"),
		opt("Service", "User", a.User),
		opt("Service", "Group", a.User),
		opt("Service", "WorkingDirectory", a.ReleaseDir),
	)
	for _, kv := range a.environment(typ) {
		o = append(o, opt("Service", "Environment", kv))
	}
	o = append(o,
		// Services' variables (REDIS_URL, with its password) first, then
		// those the hooks returned for this release, then the config vars,
		// which may override them. Files, not Environment= lines: a unit
		// file is readable by every user of the server.
		opt("Service", "EnvironmentFile", "-"+filepath.Join(a.AppDir, appuser.ServicesEnv)),
	)
	if a.VarsFile != "" {
		o = append(o, opt("Service", "EnvironmentFile", "-"+a.VarsFile))
	}
	o = append(o,
		opt("Service", "EnvironmentFile", "-"+filepath.Join(a.AppDir, configvars.FileName)),
		opt("Service", "ExecStart", "/bin/sh -c "+execQuote(execLine(a.Processes[typ]))),
		opt("Service", "Restart", "always"),
		opt("Service", "RestartSec", "1"),
		opt("Service", "KillSignal", "SIGTERM"),
		opt("Service", "KillMode", killMode(a.Processes[typ])),
		opt("Service", "TimeoutStopSec", strconv.Itoa(int(a.grace(typ).Seconds()))),
		opt("Service", "SyslogIdentifier", a.prefix()+typ),
		opt("Service", "UMask", "0027"),
	)
	// Per instance: a fork bomb or a leak stays in its unit, where the
	// kernel stops it, and the other apps and the agent go on.
	l := a.limits(typ)
	o = append(o, sysd.Limits(l.Tasks, l.MemoryHigh(), l.Memory, l.CPUWeight)...)
	o = append(o, sysd.Sandbox(filepath.Join(a.AppDir, "data"), filepath.Join(a.AppDir, "home"))...)
	// The agent's own state is none of the app's business (the Node.js
	// runtimes in sys/runtimes stay reachable).
	for _, p := range []string{"server.json", "pids", "logs", "hooks.d"} {
		o = append(o, opt("Service", "InaccessiblePaths", "-"+filepath.Join(a.Root, "sys", p)))
	}
	// Of JeCloud's root, the process sees only what it needs: its release
	// (its working directory), its Node.js, its data and home; not the
	// state of the other app environments, nor this one's bundles and
	// app.json. The EnvironmentFiles are read by systemd before.
	readOnly := a.ReleaseDir
	if a.NodeBin != "" {
		readOnly += " " + filepath.Dir(a.NodeBin)
	}
	o = append(o,
		opt("Service", "TemporaryFileSystem", a.Root+":ro"),
		opt("Service", "BindReadOnlyPaths", readOnly),
		opt("Service", "BindPaths", filepath.Join(a.AppDir, "data")+" "+filepath.Join(a.AppDir, "home")),
	)
	o = append(o,
		opt("Install", "WantedBy", "multi-user.target"),
	)
	return o
}

func (a appUnits) socket() []*unit.UnitOption {
	return []*unit.UnitOption{
		opt("Unit", "Description", fmt.Sprintf("%s %s: web socket %%i (JeCloud)", a.App, a.Env)),
		opt("Socket", "ListenStream", strconv.Itoa(a.Port)),
		// Every instance binds the same port: the kernel spreads connections,
		// and while one instance restarts its socket keeps queueing them.
		opt("Socket", "ReusePort", "yes"),
		opt("Socket", "Backlog", "4096"),
		opt("Socket", "Service", a.prefix()+"web@%i.service"),
		opt("Install", "WantedBy", "sockets.target"),
	}
}

// systemdQuote quotes one Environment= assignment: double quotes, with
// backslashes, quotes and specifiers escaped.
func systemdQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%", "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// execLine is the line /bin/sh runs for cmd: cmd in place of the shell
// (appspec.Command.ExecLine), so that the app is the process systemd
// started (LISTEN_PID names it) and gets SIGTERM itself. A line of more
// than one command (`cd api && ./serve`, a `while` loop) is run by the
// shell as written: `exec` before it would run its first command only, or
// fail (`exec cd`).
func execLine(cmd string) string {
	c, err := appspec.ParseCommand(cmd)
	if err != nil || c.Exec == "" {
		return "exec " + cmd // as written: the shell says what is wrong with it
	}
	if c.Compound != "" {
		return cmd
	}
	return c.ExecLine()
}

// killMode is how systemd stops a process: SIGTERM to the main process
// (the app, in place of the shell), SIGKILL to what is left after the
// grace ("mixed"); SIGTERM to every process at once when the shell stays
// (a line of more than one command), as Heroku does, since the shell
// would not pass it on.
func killMode(cmd string) string {
	if c, err := appspec.ParseCommand(cmd); err == nil && c.Exec != "" && c.Compound != "" {
		return "control-group"
	}
	return "mixed"
}

// execQuote quotes s as one word of an ExecStart= line, so that the
// program gets s exactly: systemd replaces specifiers (%%) in the line,
// then removes the quotes and undoes the backslash escapes (\\, \'), then
// replaces variables ($$); control characters, a newline first (it would
// end the line), are written as \xNN.
func execQuote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' || c == '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '%':
			b.WriteString("%%")
		case c == '$':
			b.WriteString("$$")
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}
