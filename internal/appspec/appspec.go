// Package appspec reads what a release says about itself, the way Heroku
// reads an app: package.json (name, engines.node, scripts.start), the
// Procfile's process types, and jecloud.toml's server-side settings
// ([web], [scale], [services], and the top-level packages = [...]). The
// agent's hooks use it on an extracted release; errors name the file, the
// value and the fix.
package appspec

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/jecloud/jecloud/internal/placement"
)

// Spec is a release's declaration.
type Spec struct {
	// Unknown is the first key of jecloud.toml that JeCloud does not know
	// (an *UnknownKeyError), left aside by Read and refused by Check.
	Unknown error
	// Node is set when the release has a package.json.
	Node *Node
	// Processes are the process types, by name ("web", "worker"): the
	// long-running ones, never the release command.
	Processes map[string]string
	// Release is the Procfile's release command ("release: ..."), run
	// once per deployment before the switch (docs/release.md); "" if none.
	Release string
	// Web is the web process's settings.
	Web Web
	// Static is the directory of the release, relative to it, that the
	// front door serves as a static site ("." for the release itself): a
	// release with neither a Procfile nor a package.json but an index.html,
	// or [web] static = "DIR". "" for none.
	Static string
	// Scale is how many instances of each type run (default 1 each).
	Scale map[string]int
	// Packages are extra OS packages the app needs.
	Packages []string
	// Services are the services the app needs, with their versions
	// ([services] redis = "7", mongodb = "7.0"; "" for any).
	Services map[string]string
	// Grace is how long each process type may take to finish after
	// SIGTERM before it is killed ([grace] worker = "10m"; default
	// DefaultGrace).
	Grace map[string]time.Duration
	// Roles places process types on server roles ([roles] worker =
	// ["worker"]); types it does not name run on web servers.
	Roles placement.Map
	// Limits are the resource limits of process types that jecloud.toml
	// sets ([limits.web] memory = "512M", tasks = 256, cpu_weight = 100);
	// LimitsOf fills in the defaults.
	Limits map[string]Limits
	// Watchdog is the crash-loop watchdog after a deploy ([watchdog]).
	Watchdog Watchdog

	rolesTable map[string][]string // [roles] as read, checked once the Procfile is known
}

// Watchdog is [watchdog] of jecloud.toml: for Window after a release goes
// live, if its processes restart more than Restarts times in all, the
// agent rolls back to the release before it. A Window of 0 turns it off.
type Watchdog struct {
	Window   time.Duration
	Restarts int
}

// The watchdog's defaults and bounds.
const (
	DefaultWatchWindow   = 10 * time.Minute
	DefaultWatchRestarts = 3
	MaxWatchWindow       = 24 * time.Hour
)

// DefaultGrace is a process's time to finish after SIGTERM, and MaxGrace
// the most [grace] may give (a deploy waits for it, within the 30 min a
// hook may take).
const (
	DefaultGrace = 30 * time.Second
	MaxGrace     = 20 * time.Minute
	// DefaultReleaseTimeout and MaxReleaseTimeout bound the release
	// command's run ([grace] release).
	DefaultReleaseTimeout = 30 * time.Minute
	MaxReleaseTimeout     = 24 * time.Hour
)

// ReleaseTimeout is how long the release command may run before it is
// stopped and the deployment fails ([grace] release, default
// DefaultReleaseTimeout).
func (s *Spec) ReleaseTimeout() time.Duration {
	if g, ok := s.Grace[ReleaseType]; ok {
		return g
	}
	return DefaultReleaseTimeout
}

// GraceOf returns process type name's grace period.
func (s *Spec) GraceOf(name string) time.Duration {
	if g, ok := s.Grace[name]; ok {
		return g
	}
	return DefaultGrace
}

// KnownServices are the services a release may declare.
var KnownServices = []string{"mail", "mongodb", "redis"}

// Node is what package.json says.
type Node struct {
	Name    string
	Engine  string // engines.node, "" if absent
	Start   string // scripts.start
	HasLock bool   // package-lock.json or npm-shrinkwrap.json
	// Scripts are package.json's scripts, by name.
	Scripts map[string]string
	// ServerJS: the release has a server.js, which `npm start` runs when
	// package.json has no start script.
	ServerJS bool
}

// Web configures the web process.
type Web struct {
	// Health is the HTTP path that answers 2xx/3xx when the app is healthy
	// ("" means any HTTP answer below 500 on "/").
	Health string `toml:"health"`
	// SocketActivation (key "socket", default false): true, systemd holds
	// the web port and hands it to the app as fd 3 (LISTEN_FDS), all
	// instances on one port; false (the default), each web instance binds
	// its own $PORT and the front door (the proxy) switches to the new
	// release's instances once they answer (docs/node.md).
	SocketActivation *bool `toml:"socket"`
	// StaticDir (key "static") is a directory of the release that the
	// front door serves as a static site (Spec.Static).
	StaticDir string `toml:"static"`
}

// Socket reports whether the web port is held by systemd (`[web] socket =
// true`); otherwise the app binds $PORT behind the proxy.
func (w Web) Socket() bool { return w.SocketActivation != nil && *w.SocketActivation }

// ProcessNames returns the process types, sorted, web first.
func (s *Spec) ProcessNames() []string {
	var out []string
	for n := range s.Processes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i] == "web") != (out[j] == "web") {
			return out[i] == "web"
		}
		return out[i] < out[j]
	})
	return out
}

var (
	// Compiled on first use, not at every jeagent start.
	procNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,29}$`) })
	debNameRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`) })
)

// isServiceVersion reports whether v is a version a service hook may pass
// on (mongodb-org-server=V on apt-get's command line): up to three numbers
// joined by dots, the last of which may be "x" ("7", "7.0", "7.0.x", "7.0.15").
func isServiceVersion(v string) bool {
	parts := strings.Split(v, ".")
	if len(parts) > 3 {
		return false
	}
	for i, p := range parts {
		if p == "x" && i == len(parts)-1 && i > 0 {
			continue
		}
		if p == "" || len(p) > 6 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

// IsPackageName reports whether name is a Debian package name that apt-get
// install can only read as "install this package": Debian's rule (lower
// case letters, digits, "+", "-" and ".", starting with a letter or digit,
// two characters at least), and no trailing "-", which apt-get reads as
// "remove this package" (openssh-server- would remove the server's sshd).
func IsPackageName(name string) bool {
	return debNameRE().MatchString(name) && !strings.HasSuffix(name, "-")
}

// Check reads the declaration of the release in dir as jepush check does:
// a key of jecloud.toml that JeCloud does not know is refused too.
func Check(dir string) (*Spec, error) {
	s, err := Read(dir)
	if err == nil && s.Unknown != nil {
		return nil, s.Unknown
	}
	return s, err
}

// Read reads the declaration of the release in dir; an unknown key of
// jecloud.toml is left aside in Spec.Unknown (see Check).
func Read(dir string) (*Spec, error) {
	s := &Spec{Processes: map[string]string{}, Scale: map[string]int{}, Grace: map[string]time.Duration{}, Limits: map[string]Limits{},
		Watchdog: Watchdog{Window: DefaultWatchWindow, Restarts: DefaultWatchRestarts}}
	if err := s.readPackageJSON(filepath.Join(dir, "package.json")); err != nil {
		return nil, err
	}
	if err := s.readProcfile(filepath.Join(dir, "Procfile")); err != nil {
		return nil, err
	}
	if s.Release = s.Processes[ReleaseType]; s.Release != "" {
		delete(s.Processes, ReleaseType) // a command run once, never a unit
	}
	if len(s.Processes) == 0 && s.Node != nil {
		s.Processes["web"] = "npm start"
	}
	if err := s.readConfig(filepath.Join(dir, "jecloud.toml")); err != nil {
		return nil, err
	}
	if err := s.findStatic(dir); err != nil {
		return nil, err
	}
	for name := range s.Scale {
		if name == ReleaseType && s.Release != "" {
			return nil, fmt.Errorf("%s: [scale] release: the release command runs once per deployment, before the switch; it has no instances to scale: remove the line",
				filepath.Join(dir, "jecloud.toml"))
		}
		if _, ok := s.Processes[name]; !ok {
			return nil, fmt.Errorf("%s: [scale] names %q, which is not a process type of the Procfile (%v)",
				filepath.Join(dir, "jecloud.toml"), name, s.ProcessNames())
		}
	}
	var err error
	if s.Roles, err = placement.Parse(filepath.Join(dir, "jecloud.toml"), s.rolesTable, s.ProcessNames()); err != nil {
		return nil, err
	}
	for name := range s.Grace {
		if name == ReleaseType && s.Release == "" {
			return nil, fmt.Errorf("%s: [grace] release is the release command's time limit, but the Procfile has no \"release:\" line: add one, or remove the key",
				filepath.Join(dir, "jecloud.toml"))
		}
		if name == ReleaseType {
			continue
		}
		if _, ok := s.Processes[name]; !ok {
			return nil, fmt.Errorf("%s: [grace] names %q, which is not a process type of the Procfile (%v)",
				filepath.Join(dir, "jecloud.toml"), name, s.ProcessNames())
		}
	}
	for name := range s.Limits {
		if name == ReleaseType && s.Release != "" {
			continue
		}
		if _, ok := s.Processes[name]; !ok {
			return nil, fmt.Errorf("%s: [limits.%s] names %q, which is not a process type of the Procfile (%v)",
				filepath.Join(dir, "jecloud.toml"), name, name, s.ProcessNames())
		}
	}
	return s, nil
}

func (s *Spec) readPackageJSON(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var pj struct {
		Name    string            `json:"name"`
		Engines map[string]any    `json:"engines"`
		Scripts map[string]string `json:"scripts"`
	}
	if err := json.Unmarshal(data, &pj); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	n := &Node{Name: pj.Name, Start: pj.Scripts["start"], Scripts: pj.Scripts}
	if v, ok := pj.Engines["node"]; ok {
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: engines.node is %v: write a version or range as a string, e.g. \"20.x\"", path, v)
		}
		n.Engine = strings.TrimSpace(str)
		if _, _, err := NodeEngine(n.Engine); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	dir := filepath.Dir(path)
	for _, lock := range []string{"package-lock.json", "npm-shrinkwrap.json"} {
		if _, err := os.Stat(filepath.Join(dir, lock)); err == nil {
			n.HasLock = true
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "server.js")); err == nil && fi.Mode().IsRegular() {
		n.ServerJS = true
	}
	s.Node = n
	return nil
}

// readProcfile reads "type: command" lines, as Heroku does.
func (s *Spec) readProcfile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		name, cmd, ok := strings.Cut(text, ":")
		name, cmd = strings.TrimSpace(name), strings.TrimSpace(cmd)
		switch {
		case !ok || cmd == "":
			return fmt.Errorf("%s:%d: %q is not \"type: command\"", path, line, text)
		case !procNameRE().MatchString(name):
			return fmt.Errorf("%s:%d: process type %q: use up to 30 characters of a-z, 0-9, '-' and '_'", path, line, name)
		case s.Processes[name] != "":
			return fmt.Errorf("%s:%d: process type %q is declared twice", path, line, name)
		}
		s.Processes[name] = cmd
	}
	return sc.Err()
}

// CheckProcessType refuses a name that no Procfile may declare.
func CheckProcessType(name string) error {
	if !procNameRE().MatchString(name) {
		return fmt.Errorf("process type %q: a Procfile's types are up to 30 characters of a-z, 0-9, '-' and '_'", name)
	}
	return nil
}

// readConfig reads the tables of jecloud.toml that matter on the server.
func (s *Spec) readConfig(path string) error {
	var c struct {
		Services map[string]string    `toml:"services"`
		Web      Web                  `toml:"web"`
		Scale    map[string]int       `toml:"scale"`
		Grace    map[string]string    `toml:"grace"`
		Limits   map[string]rawLimits `toml:"limits"`
		Packages []string             `toml:"packages"`
		Roles    map[string][]string  `toml:"roles"`
		Watchdog struct {
			Window   *string `toml:"window"`
			Restarts *int    `toml:"restarts"`
		} `toml:"watchdog"`
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return fmt.Errorf("%s:%d:%d: %s", path, pe.Position.Line, pe.Position.Col, pe.Message)
		}
		return typeError(path, err)
	}
	// Every key is checked (the library matches keys without regard to
	// case, and leaves the unknown ones aside without a word).
	if err := checkKeys(path, data, md); err != nil {
		var uk *UnknownKeyError
		if !errors.As(err, &uk) {
			return err
		}
		s.Unknown = err
	}
	if c.Web.Health != "" && !strings.HasPrefix(c.Web.Health, "/") {
		return fmt.Errorf("%s: [web] health = %q: give a path starting with /, e.g. \"/healthz\"", path, c.Web.Health)
	}
	for name, n := range c.Scale {
		if n < 0 || n > 64 {
			return fmt.Errorf("%s: [scale] %s = %d: give 0 to 64 instances", path, name, n)
		}
		s.Scale[name] = n
	}
	for name, v := range c.Grace {
		d, err := time.ParseDuration(v)
		if name == ReleaseType {
			if err != nil || d < time.Second || d > MaxReleaseTimeout {
				return fmt.Errorf("%s: [grace] release = %q: give the release command's time limit as a duration from \"1s\" to \"%s\", e.g. \"45m\" (default %s)",
					path, v, MaxReleaseTimeout, DefaultReleaseTimeout)
			}
			s.Grace[name] = d
			continue
		}
		if err != nil || d < time.Second || d > MaxGrace {
			return fmt.Errorf("%s: [grace] %s = %q: give a duration from \"1s\" to \"%s\", e.g. \"10m\"", path, name, v, MaxGrace)
		}
		s.Grace[name] = d
	}
	if w := c.Watchdog.Window; w != nil {
		d, err := time.ParseDuration(*w)
		if err != nil || d < 0 || d > MaxWatchWindow {
			return fmt.Errorf("%s: [watchdog] window = %q: give a duration from \"0s\" (off) to \"%s\", e.g. \"10m\"", path, *w, MaxWatchWindow)
		}
		s.Watchdog.Window = d
	}
	if n := c.Watchdog.Restarts; n != nil {
		if *n < 0 || *n > 1000 {
			return fmt.Errorf("%s: [watchdog] restarts = %d: give 0 (the first restart rolls back) to 1000", path, *n)
		}
		s.Watchdog.Restarts = *n
	}
	if s.Limits, err = parseLimits(path, c.Limits); err != nil {
		return err
	}
	for _, p := range c.Packages {
		if !IsPackageName(p) {
			return fmt.Errorf("%s: packages: %q is not a Debian package name (lower case letters, digits, "+
				"\"+\", \"-\" and \".\", not ending in \"-\"): write the package's name as `apt-cache search` shows it", path, p)
		}
	}
	for name := range c.Services {
		if !slices.Contains(KnownServices, name) {
			return fmt.Errorf("%s: [services] %q: JeCloud knows %v", path, name, KnownServices)
		}
	}
	for _, name := range []string{"mongodb", "redis"} {
		if v := c.Services[name]; v != "" && !isServiceVersion(v) {
			return fmt.Errorf("%s: [services] %s = %q: give a version such as \"7\", \"7.0\" or \"7.0.x\" (digits and dots), "+
				"or \"\" for the server's own", path, name, v)
		}
	}
	if v, ok := c.Services["mail"]; ok && v != "" {
		return fmt.Errorf("%s: [services] mail = %q: the mail relay has no version (it is the server's Postfix): write mail = \"\"", path, v)
	}
	s.Web, s.Packages, s.Services, s.rolesTable = c.Web, c.Packages, c.Services, c.Roles
	return nil
}

// Runs reports whether the release has anything to run or serve: a
// long-running process type (the release phase does not count) or a
// static site. A release without is unpacked, and never reported live.
func (s *Spec) Runs() bool {
	if s.Static != "" {
		return true
	}
	for typ := range s.Processes {
		if typ != ReleaseType {
			return true
		}
	}
	return false
}

// NothingToRun is what jepush and jeagent say of a release that does not
// Run, after "VERSION is unpacked": it is in place, and nothing serves it.
const NothingToRun = "no process types (no Procfile, no package.json, no index.html: nothing runs or is served; see docs/procfile.md)"

// Outcome says what a deployed release in dir is, for "VERSION ...
// [on SERVER]": "is live", or, when it has nothing to run or serve (or
// cannot be read), "is unpacked" with the reason after.
func Outcome(dir, where string) string {
	if spec, err := Read(dir); err == nil && !spec.Runs() {
		return "is unpacked" + where + "; " + NothingToRun
	}
	return "is live" + where
}

// findStatic sets Static: [web] static = "DIR", checked, or "." for a
// release with no process type but an index.html.
func (s *Spec) findStatic(dir string) error {
	cfg := filepath.Join(dir, "jecloud.toml")
	if d := s.Web.StaticDir; d != "" {
		clean := filepath.Clean(filepath.FromSlash(d))
		if !filepath.IsLocal(clean) && clean != "." {
			return fmt.Errorf("%s: [web] static = %q: give a directory inside the release, relative to it, e.g. \"public\" (no \"..\", not absolute)", cfg, d)
		}
		if _, ok := s.Processes["web"]; ok {
			return fmt.Errorf("%s: [web] static = %q, and the release has a web process (%q): the front door serves one or the other; "+
				"remove static, or the web process", cfg, d, s.Processes["web"])
		}
		fi, err := os.Lstat(filepath.Join(dir, clean))
		if err != nil || !fi.IsDir() {
			return fmt.Errorf("%s: [web] static = %q: the release has no directory %s (a symbolic link does not count): add it, or fix the path", cfg, d, clean)
		}
		s.Static = clean
		return nil
	}
	if s.Node != nil || len(s.Processes) > 0 {
		return nil
	}
	if fi, err := os.Lstat(filepath.Join(dir, "index.html")); err == nil && fi.Mode().IsRegular() {
		s.Static = "."
	}
	return nil
}

// Instances returns how many instances of type name run.
func (s *Spec) Instances(name string) int {
	if n, ok := s.Scale[name]; ok {
		return n
	}
	return 1
}
