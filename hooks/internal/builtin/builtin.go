// Package builtin is the opening every service hook's Run shares, written
// once: the phase filter, the release's app spec (internal/appspec),
// whether the app declares the hook's service, whether systemd runs here,
// and a failure wrapped in a *hook.Error. A hook implements the phases it
// has business with as methods (Installer, Deployer, ...), in the shape of
// nomad's task runner hooks, and its Run calls Run with them.
package builtin

import (
	"context"
	"fmt"
	"io"

	"github.com/jecloud/jecloud/internal/appspec"
	"github.com/jecloud/jecloud/internal/hook"
)

// Env is what one phase of a hook works with.
type Env struct {
	Req  hook.Request
	Spec *appspec.Spec
	// Want is the version jecloud.toml's [services] declares for the
	// hook's service ("": any), and Declared whether it declares it.
	Want     string
	Declared bool
	Log      io.Writer
}

// Installer is a hook with business in the install phase.
type Installer interface {
	Install(ctx context.Context, e Env) error
}

// Preparer is a hook with business in the prepare phase.
type Preparer interface {
	Prepare(ctx context.Context, e Env) error
}

// Deployer is a hook with business in the deployed phase.
type Deployer interface {
	Deployed(ctx context.Context, e Env) error
}

// Cleaner is a hook with business in the cleanup phase.
type Cleaner interface {
	Cleanup(ctx context.Context, e Env) error
}

// Destroyer is a hook with business in the destroy phase: the app
// environment is being removed. Its Env has no Spec (there may be no
// release left) and Declared is false: it removes what it finds.
type Destroyer interface {
	Destroy(ctx context.Context, e Env) error
}

// Named is a hook: its name goes into the *hook.Error of a failure.
type Named interface{ Name() string }

// Options say which apps and servers a hook works for.
type Options struct {
	// Service is the key of jecloud.toml's [services] the hook sets up
	// ("": none). The phases are skipped for an app that does not
	// declare it, unless Undeclared.
	Service string
	// Undeclared runs the phases for an app that does not declare
	// Service too (Env.Declared says which): the hook then removes what
	// it set up before.
	Undeclared bool
	// Systemd, if set, reports whether systemd runs here (it is PID 1).
	// When it does not, the phases are skipped, and for an app that
	// declares Service the log says "systemd is not running here: Label
	// is not set up".
	Systemd func() bool
	Label   string
}

// Run carries out req.Phase for h through the phase's interface, when h
// implements it and o lets the app and the server have it.
func Run(ctx context.Context, h Named, o Options, req hook.Request, log io.Writer) (hook.Response, error) {
	phase := phaseOf(h, req.Phase)
	if phase == nil {
		return hook.Response{}, nil
	}
	fail := func(err error) (hook.Response, error) {
		return hook.Response{}, &hook.Error{Hook: h.Name(), Phase: req.Phase, Reason: err.Error()}
	}
	if req.Phase == hook.Destroy {
		// Whatever the app declared once: remove what is there.
		if o.Systemd != nil && !o.Systemd() {
			return hook.Response{}, nil
		}
		if err := phase(ctx, Env{Req: req, Log: log}); err != nil {
			return fail(err)
		}
		return hook.Response{}, nil
	}
	spec, err := appspec.Read(req.ReleaseDir)
	if err != nil {
		return fail(err)
	}
	e := Env{Req: req, Spec: spec, Log: log}
	if o.Service != "" {
		e.Want, e.Declared = spec.Services[o.Service]
		if !e.Declared && !o.Undeclared {
			return hook.Response{}, nil
		}
	}
	if o.Systemd != nil && !o.Systemd() {
		if e.Declared {
			fmt.Fprintf(log, "systemd is not running here: %s is not set up\n", o.Label)
		}
		return hook.Response{}, nil
	}
	if err := phase(ctx, e); err != nil {
		return fail(err)
	}
	return hook.Response{}, nil
}

// phaseOf is h's method for phase, or nil.
func phaseOf(h Named, phase string) func(context.Context, Env) error {
	switch phase {
	case hook.Install:
		if i, ok := h.(Installer); ok {
			return i.Install
		}
	case hook.Prepare:
		if p, ok := h.(Preparer); ok {
			return p.Prepare
		}
	case hook.Deployed:
		if d, ok := h.(Deployer); ok {
			return d.Deployed
		}
	case hook.Cleanup:
		if c, ok := h.(Cleaner); ok {
			return c.Cleanup
		}
	case hook.Destroy:
		if d, ok := h.(Destroyer); ok {
			return d.Destroy
		}
	}
	return nil
}
