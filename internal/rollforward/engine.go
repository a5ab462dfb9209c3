// Package rollforward carries a server from what it is to what its state
// files ask for, one step at a time. Each run observes the tree, makes a
// plan of steps (each with a reason), applies the first, persists, and plans
// again, until nothing is left to do. Every step is idempotent and records
// where it got to, so a run killed at any point is finished by the next one.
package rollforward

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jecloud/jecloud/internal/bundle"
	"github.com/jecloud/jecloud/internal/hook"
	"github.com/jecloud/jecloud/internal/plan"
	"github.com/jecloud/jecloud/internal/state"
)

// Engine plans and applies the steps for one server.
type Engine struct {
	Layout state.Layout
	// Hooks returns the hooks to call, in order (built-ins, then hooks.d).
	Hooks func() ([]hook.Hook, error)
	// Log receives one line per step and the hooks' output.
	Log io.Writer
	// Now is the clock (state.Now if nil).
	Now func() time.Time
	// Limits cap what a bundle may hold (bundle.DefaultLimits if zero).
	Limits bundle.Limits
	// DiskReserve is the free space extraction leaves untouched.
	DiskReserve int64
	// IgnoreBackoff retries steps now even if they are backing off.
	IgnoreBackoff bool
	// Fault, if set, is called at named points of each step; tests use it
	// to kill the process there (see docs/reliability).
	Fault func(point string)
	// MaxSteps bounds one run (a safety net against a step that never
	// makes progress); 0 means 10,000.
	MaxSteps int
	// BuildGit fetches g's branch and stores the bundle of its tip on the
	// git server in ae's versions/ (commit, the one pushed, if it is still
	// the tip), returning the commit built and the version ID
	// (gitdeploy.Builder). Nil: pushes recorded by the webhook are not
	// built.
	BuildGit func(ctx context.Context, ae state.AppEnv, g state.Git, commit string) (built, version string, err error)
	// Route renders the front door's configuration from the state and
	// loads it into the proxy (proxy.Client.Apply), returning notes on
	// what it could not route. Nil: the Route step fails and says so.
	Route func(ctx context.Context) (notes []string, err error)
	// Release runs a release's release command (oneoff.RunRelease, with
	// the app's user created first). Nil, where systemd is not running:
	// the command is skipped, and the log says so.
	Release ReleaseFunc
	// Restarts counts how many times the processes of ae's release
	// version restarted by themselves since they were started (the
	// crash-loop watchdog; UnitRestarts). Nil: the watchdog cannot count,
	// and forgets its watches.
	Restarts func(ctx context.Context, ae state.AppEnv, version string) (int, error)
}

// Step is a planned step (package plan) with what carries it out.
type Step struct {
	plan.Step
	apply func(ctx context.Context) error
}

// Problem is an app environment the engine cannot work on (plan.Problem).
type Problem = plan.Problem

// ServerAppEnv stands for sys/server.json in a Problem.
var ServerAppEnv = plan.ServerAppEnv

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC().Truncate(time.Second)
	}
	return state.Now()
}

func (e *Engine) fault(point string) {
	if e.Fault != nil {
		e.Fault(point)
	}
}

func (e *Engine) limits() bundle.Limits {
	if e.Limits == (bundle.Limits{}) {
		return bundle.DefaultLimits()
	}
	return e.Limits
}

func (e *Engine) logf(ae state.AppEnv, format string, args ...any) {
	if e.Log == nil {
		return
	}
	fmt.Fprintf(e.Log, "%s %s: %s\n", time.Now().UTC().Format(time.RFC3339), ae, fmt.Sprintf(format, args...))
}

// Plan observes the server and returns the steps to take, most urgent first,
// and the app environments it must skip (see package plan).
func (e *Engine) Plan() ([]Step, []Problem, error) {
	p, err := plan.Make(e.Layout, e.now(), e.IgnoreBackoff)
	if err != nil {
		return nil, nil, err
	}
	steps := make([]Step, len(p.Steps))
	for i, s := range p.Steps {
		steps[i] = Step{Step: s, apply: e.applier(s)}
	}
	return steps, p.Problems, nil
}

// applier returns what carries s out.
func (e *Engine) applier(s plan.Step) func(context.Context) error {
	o := s.Env
	switch s.Name {
	case plan.Leftovers:
		return removeAll(s.Paths)
	case plan.Cleanup:
		return e.removeRelease(o, s.Release)
	case plan.GitBuild:
		return e.buildGit(o, s.Commit)
	case plan.Request:
		return e.requestCurrent(o)
	case plan.Route:
		return e.route
	case plan.Watch:
		return e.watch(o)
	case plan.Destroy:
		return e.destroy(o)
	case plan.DeployStep(state.StateRequested):
		return e.start(o)
	case plan.DeployStep(state.StateVerifying):
		return e.verify(o)
	case plan.DeployStep(state.StateExtracting):
		return e.extract(o)
	case plan.DeployStep(state.StateInstalling):
		return e.runPhase(o, hook.Install, state.StatePreparing)
	case plan.DeployStep(state.StatePreparing):
		return e.runPhase(o, hook.Prepare, "")
	case plan.DeployStep(state.StateReleasing):
		return e.release(o)
	case plan.DeployStep(state.StateSwitching):
		return e.switchCurrent(o)
	case plan.DeployStep(state.StateStarting):
		return e.startApp(o)
	case plan.DeployStep(state.StateRollingBack):
		return e.rollBack(o)
	}
	return func(context.Context) error { return fmt.Errorf("no way to carry out step %s", s) }
}

// Run applies steps until none is left, and returns the problems of the
// last plan. A step that fails is recorded in its app.json (as a failed
// deployment, or a backoff) and the run goes on with the others.
func (e *Engine) Run(ctx context.Context) ([]Problem, error) {
	max := e.MaxSteps
	if max == 0 {
		max = 10000
	}
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		steps, problems, err := e.Plan()
		if err != nil {
			return nil, err
		}
		if len(steps) == 0 {
			return problems, nil
		}
		if i >= max {
			return problems, fmt.Errorf("gave up after %d steps; next was %s", max, steps[0])
		}
		s := steps[0]
		e.logf(s.AppEnv, "%s (%s)", s.Name, s.Reason)
		if err := s.apply(ctx); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if rerr := e.recordError(s, err); rerr != nil {
				return problems, fmt.Errorf("%s: %v; and recording it: %w", s.AppEnv, err, rerr)
			}
		}
	}
}
