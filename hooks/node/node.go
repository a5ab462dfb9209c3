// Package node is the built-in hook that runs an app's processes: every
// release with a Procfile, in any language, and every Node.js app (a
// release with a package.json). For a Node.js app, in `install` it pins
// and installs the Node.js version of engines.node, and in `prepare` it
// installs the dependencies with npm as the app's user; for every app it
// creates the app's own unprivileged user in `install`. In `deployed` it
// writes sandboxed systemd units for the Procfile's process types (each
// command run by /bin/sh -c with $PORT and the config vars), starts the
// new release's web instances on fresh ports beside the old ones, switches
// the front door (the proxy) to them once each answers, drains and stops
// the old ones (or, with [web] socket = true, restarts the instances one
// at a time on a port held by systemd sockets), restarts the other types
// one instance at a time, and checks that everything stays up for a soak
// period. A static site (appspec.Spec.Static) is copied where the front
// door serves it from. The Procfile's release phase is never a unit. See
// docs/node.md and docs/procfile.md.
package node

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/util"
	"github.com/jecloud/jecloud/internal/appspec"
	"github.com/jecloud/jecloud/internal/appuser"
	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/hook"
	"github.com/jecloud/jecloud/internal/placement"
	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/jecloud/jecloud/internal/sysd"
)

// Hook is the Node.js hook.
type Hook struct {
	// UnitDir is where unit files go (/etc/systemd/system).
	UnitDir string
	// HealthTimeout bounds the wait for a restarted web process to answer.
	HealthTimeout time.Duration
	// Soak is how long every process must stay up after the restarts.
	Soak time.Duration
	// Active reports whether the hook can work here: it needs systemd as
	// PID 1. Elsewhere (a container without systemd, a demo) it says so in
	// the log and leaves the release unpacked but not started.
	Active func() bool
	// Proxy is the front door (proxy.Default) that web instances are
	// deployed behind, unless the app asks for socket activation.
	Proxy frontDoor
	// InstancePorts, if set, is the range of the web instances' ports
	// behind the proxy (else server.json's, else InstancePorts); PortFree says whether a port is
	// free (a test bind when nil); DrainPoll is how often the proxy is
	// asked about the old instances' requests in flight (100 ms when zero).
	InstancePorts [2]int
	PortFree      func(port int) bool
	DrainPoll     time.Duration
}

// New returns the hook with its defaults.
func New() *Hook {
	return &Hook{
		UnitDir:       sysd.UnitDir,
		HealthTimeout: 60 * time.Second,
		Soak:          5 * time.Second,
		Active:        util.IsRunningSystemd,
		Proxy:         defaultFrontDoor(),
	}
}

func (h *Hook) Name() string { return "node" }

// Run carries out one phase for a release with processes to run (a
// Procfile, a package.json) or a static site, and for a release that has
// none any more where the previous one ran some (they are stopped); other
// releases are not its business.
func (h *Hook) Run(ctx context.Context, req hook.Request, log io.Writer) (hook.Response, error) {
	if req.Phase == hook.Cleanup {
		return hook.Response{}, nil // the agent removes the release; units name the live one only
	}
	if req.Phase == hook.Destroy {
		if err := h.destroy(ctx, req, log); err != nil {
			return hook.Response{}, h.fail(req, err)
		}
		return hook.Response{}, nil
	}
	spec, err := appspec.Read(req.ReleaseDir)
	if err != nil {
		return hook.Response{}, h.fail(req, err)
	}
	// The release phase runs once per deployment, before the switch: it
	// is never a long-running unit.
	delete(spec.Processes, appspec.ReleaseType)
	delete(spec.Scale, appspec.ReleaseType)
	if spec.Node == nil && !spec.Runs() && !h.ranBefore(req) {
		return hook.Response{}, nil
	}
	if !h.Active() {
		if req.Phase == hook.Deployed {
			what := "the app"
			if spec.Node != nil {
				what = "the Node.js app"
			}
			fmt.Fprintf(log, "systemd is not running here: %s is unpacked but not started\n", what)
		}
		return hook.Response{}, nil
	}
	a, err := h.app(req)
	if err != nil {
		return hook.Response{}, h.fail(req, err)
	}
	a.only = req.Types
	for typ, n := range req.Scale { // ps:scale wins over jecloud.toml's [scale]
		if _, ok := spec.Processes[typ]; ok {
			spec.Scale[typ] = n
		} else if req.Phase == hook.Deployed {
			fmt.Fprintf(log, "scale %s=%d ignored: the Procfile has no %q process\n", typ, n, typ)
		}
	}
	if req.Phase == hook.Deployed {
		place(spec, req.Placement, log)
	}
	switch req.Phase {
	case hook.Install:
		err = h.install(ctx, a, spec, log)
	case hook.Prepare:
		err = h.prepare(ctx, a, spec, log)
	case hook.Deployed:
		varsFile := state.Layout{Root: req.Root}.HookVars(state.AppEnv{App: req.App, Env: req.Env}, req.Version)
		err = h.deployed(ctx, a, spec, varsFile, req.PreviousVersion != req.Version, log)
	}
	if err != nil {
		return hook.Response{}, h.fail(req, err)
	}
	return hook.Response{}, nil
}

func (h *Hook) fail(req hook.Request, err error) error {
	return &hook.Error{Hook: h.Name(), Phase: req.Phase, Reason: err.Error()}
}

// app is one app environment as the hook sees it.
type app struct {
	root, name, env string
	dir             string // ROOT/APP/ENV
	release         string
	user            string
	settings        settings
	// only are the process types a restart is limited to (hook.Request's
	// Types); empty: every type.
	only []string
}

func (h *Hook) app(req hook.Request) (*app, error) {
	s, err := readSettings(req)
	if err != nil {
		return nil, err
	}
	user, err := appuser.Resolve(req.App, req.Env)
	if err != nil {
		return nil, err
	}
	return &app{
		root: req.Root, name: req.App, env: req.Env,
		dir:      req.AppDir,
		release:  req.ReleaseDir,
		user:     user,
		settings: s,
	}, nil
}

// runtimesDir holds the pinned Node.js versions under root: sys/runtimes/node.
func runtimesDir(root string) string {
	return filepath.Join(state.Layout{Root: root}.Sys(), "runtimes", "node")
}

func (a *app) runtimes() *Runtimes {
	return &Runtimes{Dir: runtimesDir(a.root), Mirror: a.settings.Node.Mirror}
}

// versionFile records the exact Node.js version in the release, so that a
// range in engines.node is resolved once and never drifts.
func (a *app) versionFile() string { return filepath.Join(a.release, ".jecloud", "node-version") }

// ranBefore reports whether the app environment has process units (a
// previous release ran processes) or a static site routed: a release
// without either stops them.
func (h *Hook) ranBefore(req hook.Request) bool {
	units, _ := filepath.Glob(filepath.Join(h.UnitDir, sysd.AppPrefix(req.App, req.Env)+"*@*"))
	if len(units) > 0 {
		return true
	}
	u, err := routes.ReadUpstreams(state.Layout{Root: req.Root}, state.AppEnv{App: req.App, Env: req.Env})
	return err != nil || u.Static != "" || len(u.Web)+len(u.Draining) > 0
}

func (h *Hook) install(ctx context.Context, a *app, spec *appspec.Spec, log io.Writer) error {
	if spec.Node == nil {
		// Its runtime is the server's: packages = [...] (the packages
		// hook, before this one), or a static binary in the release.
		_, _, err := appuser.Ensure(a.name, a.env, a.dir, log)
		return err
	}
	rt := a.runtimes()
	version, err := a.version()
	if err != nil {
		if version, err = rt.Resolve(ctx, spec.Node.Engine); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(a.versionFile()), 0o755); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(a.versionFile(), []byte(version+"\n"), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(log, "engines.node %q: Node.js %s\n", spec.Node.Engine, version)
	}
	if _, err := rt.Install(ctx, version, log); err != nil {
		return err
	}
	_, _, err = appuser.Ensure(a.name, a.env, a.dir, log)
	return err
}

func (a *app) version() (string, error) {
	b, err := os.ReadFile(a.versionFile())
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func (h *Hook) prepare(ctx context.Context, a *app, spec *appspec.Spec, log io.Writer) error {
	// A web process that cannot get its socket is refused before npm runs
	// and before the switch (the live version keeps serving).
	web, err := spec.WebCommand()
	if err != nil {
		return err
	}
	if cmd := spec.Processes["web"]; web != cmd {
		fmt.Fprintf(log, "web: %q runs package.json's start script, %q, itself (%s would keep the web socket, fd 3, from it)\n",
			cmd, web, strings.Fields(cmd)[0])
	}
	if spec.Node == nil {
		return nil
	}
	version, err := a.version()
	if err != nil {
		return fmt.Errorf("no pinned Node.js version in %s: the install phase did not run", a.versionFile())
	}
	return npmInstall(ctx, a, a.runtimes().Bin(version), spec.Node.HasLock, log)
}

// place gives the process types that run on other servers of the
// environment 0 instances here ([roles] of jecloud.toml and the server's
// placement), and says what this server runs.
func place(spec *appspec.Spec, at *placement.Server, log io.Writer) {
	if at == nil {
		return
	}
	counts := spec.Roles.Counts(at, spec.ProcessNames(), spec.Instances)
	var here, elsewhere []string
	for _, typ := range spec.ProcessNames() {
		if spec.Roles.Runs(at, typ) {
			here = append(here, fmt.Sprintf("%s=%d", typ, counts[typ]))
		} else {
			elsewhere = append(elsewhere, typ+" ("+spec.Roles.RoleOf(typ)+" servers)")
		}
		spec.Scale[typ] = counts[typ]
	}
	msg := fmt.Sprintf("this is a %s server: it runs %s", at.RoleOrWeb(), orNone(here))
	if len(elsewhere) > 0 {
		msg += "; elsewhere: " + strings.Join(elsewhere, ", ")
	}
	fmt.Fprintln(log, msg)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "no process"
	}
	return strings.Join(s, ", ")
}
