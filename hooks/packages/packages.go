// Package packages is the built-in hook that installs the OS packages an app
// declares at the top of its jecloud.toml:
//
//	packages = ["imagemagick", "libvips42"]
//
// In `install`, before the services and Node.js hooks (native modules need
// their libraries before `npm ci`), it asks dpkg which of them are missing
// and installs only those with apt-get, so a deploy of an app whose packages
// are all there runs no apt at all. The package lists are refreshed (apt-get
// update) only when an install fails, once: a package missing from stale or
// empty lists, or a list pointing at a .deb the mirror no longer has. A
// package apt does not know fails the install phase, before the switch, so
// the live version keeps serving. See docs/node.md, "OS packages".
package packages

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jecloud/jecloud/hooks/internal/builtin"
	"github.com/jecloud/jecloud/internal/appspec"
	"github.com/jecloud/jecloud/internal/hook"
)

// LockTimeout is how long apt-get waits for dpkg's lock (another apt run,
// unattended-upgrades) before it gives up, in seconds.
const LockTimeout = 120

// Env is the environment apt-get runs with, on top of the agent's own: no
// questions, English messages (the hook reads apt's "E:" lines), and
// needrestart (Ubuntu) listing services to restart rather than restarting
// the app's units behind the agent's back.
var Env = []string{"DEBIAN_FRONTEND=noninteractive", "LC_ALL=C.UTF-8", "NEEDRESTART_MODE=l"}

// Cmd is one command to run: Args[0] is the program.
type Cmd struct {
	Args []string
	Env  []string // added to the agent's environment
}

func (c Cmd) String() string { return strings.Join(c.Args, " ") }

// Runner runs commands; tests give one that runs nothing.
type Runner interface {
	// Run runs c to completion. A command that exits non-zero returns an
	// error with an ExitCode() int method, as *exec.ExitError has.
	Run(ctx context.Context, c Cmd, stdout, stderr io.Writer) error
}

// Exec runs commands with os/exec.
type Exec struct{}

// Run runs c; when ctx ends it asks the command to stop with SIGTERM (apt
// then lets dpkg finish the package at hand), and kills it 30 s later.
func (Exec) Run(ctx context.Context, c Cmd, stdout, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, c.Args[0], c.Args[1:]...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	return cmd.Run()
}

// Hook is the OS packages hook.
type Hook struct {
	Runner Runner
	// Timeout bounds the whole phase (0: no bound but the caller's), as
	// the agent bounds its users' hooks: a hung apt must not hold every
	// roll-forward.
	Timeout time.Duration
	// LookPath finds a program (exec.LookPath).
	LookPath func(string) (string, error)
	// Euid is the effective user id (os.Geteuid): installing needs root.
	Euid func() int
}

// New returns the hook, running the real dpkg-query and apt-get.
func New() *Hook {
	return &Hook{Runner: Exec{}, Timeout: 30 * time.Minute, LookPath: exec.LookPath, Euid: os.Geteuid}
}

func (h *Hook) Name() string { return "packages" }

// Run installs the declared packages in the install phase (Install); the
// other phases are not its business.
func (h *Hook) Run(ctx context.Context, req hook.Request, log io.Writer) (hook.Response, error) {
	return builtin.Run(ctx, h, builtin.Options{}, req, log)
}

// Install installs the packages the app declares, within h.Timeout.
func (h *Hook) Install(ctx context.Context, e builtin.Env) error {
	if h.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.Timeout)
		defer cancel()
	}
	return h.Ensure(ctx, e.Spec.Packages, e.Log)
}

// Ensure installs those of pkgs that dpkg does not report installed.
func (h *Hook) Ensure(ctx context.Context, pkgs []string, log io.Writer) error {
	pkgs = dedupe(pkgs)
	if len(pkgs) == 0 {
		return nil
	}
	// The names reach apt-get's command line here, whoever called: refuse
	// anything apt could read as an option or as "remove" (a trailing "-").
	for _, p := range pkgs {
		if !appspec.IsPackageName(p) {
			return fmt.Errorf("packages: %q is not a Debian package name (lower case letters, digits, \"+\", \"-\" and \".\", "+
				"not ending in \"-\"): nothing was installed; fix the name in jecloud.toml and push again", p)
		}
	}
	list := strings.Join(pkgs, ", ")
	for _, prog := range []string{"dpkg-query", "apt-get"} {
		if _, err := h.LookPath(prog); err != nil {
			return fmt.Errorf("jecloud.toml declares packages %s, but this server has no %s: JeCloud installs OS packages "+
				"with apt, on Debian and Ubuntu only; deploy to such a server, or install them with this system's "+
				"package manager and remove them from packages in jecloud.toml", list, prog)
		}
	}
	var missing []string
	for _, p := range pkgs {
		ok, err := h.installed(ctx, p)
		if err != nil {
			return err
		}
		if !ok {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		fmt.Fprintf(log, "OS packages already installed: %s\n", list)
		return nil
	}
	if uid := h.Euid(); uid != 0 {
		return fmt.Errorf("jecloud.toml declares packages that are not installed (%s) and jeagent runs as uid %d, "+
			"not root: run jeagent as root, or install them first with `sudo apt-get install %s`",
			strings.Join(missing, ", "), uid, strings.Join(missing, " "))
	}
	fmt.Fprintf(log, "installing OS packages: %s\n", strings.Join(missing, ", "))
	errs, err := h.aptGet(ctx, log, installArgs(missing)...)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("apt-get install %s: %w", strings.Join(missing, " "), ctx.Err())
	}
	fmt.Fprintf(log, "apt-get install failed (%v): refreshing the package lists (apt-get update) and trying again\n", err)
	if uerrs, uerr := h.aptGet(ctx, log, append([]string{"update", "-q"}, lockOpt()...)...); uerr != nil {
		return fmt.Errorf("apt-get install %s failed (%s), and apt-get update failed too (%w)%s: check the server's "+
			"network and /etc/apt/sources.list, then deploy again", strings.Join(missing, " "), lastOr(errs, err), uerr, last(uerrs))
	}
	errs, err = h.aptGet(ctx, log, installArgs(missing)...)
	if err == nil {
		return nil
	}
	if unknown := unknownPackages(errs); len(unknown) > 0 {
		return fmt.Errorf("jecloud.toml: packages: apt knows no installable package %s on this server (even after apt-get update): "+
			"check the name with `apt-cache search %s` or `apt-cache policy %s` there, fix jecloud.toml and push again "+
			"(the live version, if any, keeps running)",
			quoteAll(unknown), unknown[0], unknown[0])
	}
	return fmt.Errorf("apt-get install %s failed (%w)%s: the whole output is in the roll-forward log; the live version, if any, keeps running",
		strings.Join(missing, " "), err, last(errs))
}

// installed reports whether dpkg has pkg in state "installed". A package
// may show once per architecture (multiarch): one installed instance is
// enough. dpkg-query exits 1 for a package it has never heard of.
func (h *Hook) installed(ctx context.Context, pkg string) (bool, error) {
	var out, errOut bytes.Buffer
	c := Cmd{Args: []string{"dpkg-query", "-W", "-f=${db:Status-Status}\\n", "--", pkg}}
	err := h.Runner.Run(ctx, c, &out, &errOut)
	var ec interface{ ExitCode() int }
	switch {
	case err == nil:
		return slices.Contains(strings.Fields(out.String()), "installed"), nil
	case errors.As(err, &ec) && ec.ExitCode() == 1:
		return false, nil
	default:
		return false, fmt.Errorf("asking dpkg whether %s is installed (dpkg-query -W %s): %w: %s (`dpkg --audit` checks dpkg's database)",
			pkg, pkg, err, strings.TrimSpace(errOut.String()))
	}
}

// aptGet runs apt-get with args, its output to log, and returns the error
// lines ("E: ...") it printed.
func (h *Hook) aptGet(ctx context.Context, log io.Writer, args ...string) ([]string, error) {
	rec := &errorLines{w: log}
	err := h.Runner.Run(ctx, Cmd{Args: append([]string{"apt-get"}, args...), Env: Env}, rec, rec)
	rec.flush()
	return rec.lines, err
}

// lockOpt makes apt-get wait for dpkg's lock rather than fail at once.
func lockOpt() []string { return []string{"-o", fmt.Sprintf("DPkg::Lock::Timeout=%d", LockTimeout)} }

// installArgs are apt-get's arguments to install pkgs: no recommends, keep
// the configuration files of a package that was removed and comes back, and
// "--" before the names, so that none is read as an option.
func installArgs(pkgs []string) []string {
	args := append([]string{"install", "-q", "-y", "--no-install-recommends"}, lockOpt()...)
	args = append(args, "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold")
	return append(append(args, "--"), pkgs...)
}

var (
	unableRE      = regexp.MustCompile(`^E: Unable to locate package (\S+)`)
	noCandidateRE = regexp.MustCompile(`^E: Package '([^']+)' has no installation candidate`)
)

// unknownPackages are the packages apt's error lines say it cannot install.
func unknownPackages(errs []string) []string {
	var out []string
	for _, l := range errs {
		for _, re := range []*regexp.Regexp{unableRE, noCandidateRE} {
			if m := re.FindStringSubmatch(l); m != nil && !slices.Contains(out, m[1]) {
				out = append(out, m[1])
			}
		}
	}
	return out
}

// errorLines copies apt's output to w and keeps its "E:" lines.
type errorLines struct {
	w     io.Writer
	buf   []byte
	lines []string
}

func (e *errorLines) Write(p []byte) (int, error) {
	e.w.Write(p)
	e.buf = append(e.buf, p...)
	if i := bytes.LastIndexByte(e.buf, '\n'); i >= 0 {
		e.scan(e.buf[:i+1])
		e.buf = append(e.buf[:0], e.buf[i+1:]...)
	}
	return len(p), nil
}

func (e *errorLines) flush() {
	e.scan(e.buf)
	e.buf = nil
}

func (e *errorLines) scan(b []byte) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, "E: ") && len(e.lines) < 50 {
			e.lines = append(e.lines, l)
		}
	}
}

// last is ": " and the last of apt's error lines, or "" when there is none.
func last(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return ": " + lines[len(lines)-1]
}

func lastOr(lines []string, err error) string {
	if len(lines) > 0 {
		return lines[len(lines)-1]
	}
	return err.Error()
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func dedupe(ss []string) []string {
	var out []string
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
