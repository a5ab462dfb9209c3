// Package rollforward carries a server from what it is to what its state
// files ask for, one step at a time. Each run observes the tree, makes a
// plan of steps (each with a reason), applies the first, persists, and plans
// again, until nothing is left to do. Every step is idempotent and records
// where it got to, so a run killed at any point is finished by the next one.
package rollforward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jecloud/jecloud/internal/bundle"
	"github.com/jecloud/jecloud/internal/hook"
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
	// server is sys/server.json as the last Plan read it.
	server state.Server
	// BuildGit fetches commit of g's repository and stores its bundle in
	// ae's versions/, returning the version ID (gitdeploy.Builder). Nil:
	// pushes recorded by the webhook are not built.
	BuildGit func(ctx context.Context, ae state.AppEnv, g state.Git, commit string) (string, error)
}

// Step is one thing to do, and why.
type Step struct {
	AppEnv state.AppEnv
	Name   string // "deploy:verifying", "cleanup", "leftovers", ...
	Reason string
	apply  func(ctx context.Context) error
	// deployment is the deployment the step was planned from (deploy steps).
	deployment *state.Deployment
}

func (s Step) String() string { return fmt.Sprintf("%s: %s (%s)", s.AppEnv, s.Name, s.Reason) }

// Problem is an app environment the engine cannot work on (its app.json does
// not parse, or it is backing off); the others go on. A server.json that does
// not parse is a Problem of ServerAppEnv.
type Problem struct {
	AppEnv state.AppEnv
	Err    error
}

// ServerAppEnv stands for sys/server.json in a Problem.
var ServerAppEnv = state.AppEnv{App: "sys", Env: "server.json"}

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
// and the app environments it must skip.
func (e *Engine) Plan() ([]Step, []Problem, error) {
	// Folders without an app.json are skipped when observe finds none.
	aes, err := e.Layout.EnvDirs()
	if err != nil {
		return nil, nil, fmt.Errorf("list app environments under %s: %w", e.Layout.Root, err)
	}
	var leftovers, cleanups, gits, deploys []Step
	var problems []Problem
	// server.json only sets the retention of old releases: a hand edit of
	// it that does not parse pauses the cleanup (nothing is removed under
	// an unknown retention) and stops no deployment.
	var srv state.Server
	cleanupPaused := false
	if err := state.Read(e.Layout.ServerJSON(), &srv); err != nil && !isNotExist(err) {
		var pe *state.ParseError
		if !errors.As(err, &pe) {
			return nil, nil, err
		}
		cleanupPaused = true
		problems = append(problems, Problem{ServerAppEnv, fmt.Errorf("cleanup of old releases is paused: %w", err)})
	}
	e.server = srv
	now := e.now()
	for _, ae := range aes {
		o, err := observe(e.Layout, ae)
		if isNotExist(err) {
			continue // app.json went away since the listing
		}
		if err != nil {
			problems = append(problems, Problem{ae, err})
			continue
		}
		if s, ok := e.planLeftovers(o, now); ok {
			leftovers = append(leftovers, s)
		}
		if s, ok := e.planGit(o); ok {
			if b := o.app.Backoff; b != nil && b.Step == s.Name && now.Before(b.NextTry) && !e.IgnoreBackoff {
				problems = append(problems, Problem{ae, fmt.Errorf("%s is backing off after %d failures until %s: %s",
					s.Name, b.Failures, b.NextTry.Format(time.RFC3339), b.LastError)})
			} else {
				gits = append(gits, s)
			}
		}
		if s, ok := e.planDeployment(o); ok {
			if b := o.app.Backoff; b != nil && b.Step == s.Name && now.Before(b.NextTry) && !e.IgnoreBackoff {
				problems = append(problems, Problem{ae, fmt.Errorf("%s is backing off after %d failures until %s: %s",
					s.Name, b.Failures, b.NextTry.Format(time.RFC3339), b.LastError)})
			} else {
				deploys = append(deploys, s)
			}
		}
		if s, ok := e.planCleanup(o, srv.Retention, now); ok && !cleanupPaused {
			if b := o.app.Backoff; b != nil && b.Step == s.Name && now.Before(b.NextTry) && !e.IgnoreBackoff {
				problems = append(problems, Problem{ae, fmt.Errorf("cleanup is backing off until %s: %s", b.NextTry.Format(time.RFC3339), b.LastError)})
			} else {
				cleanups = append(cleanups, s)
			}
		}
	}
	// Leftovers first, then cleanup (it frees the disk a deployment needs),
	// then builds of pushed commits (each requests a deployment), then
	// deployments.
	steps := append(append(append(leftovers, cleanups...), gits...), deploys...)
	return steps, problems, nil
}

// Server returns sys/server.json as the last Plan read it (zero if it was
// missing or did not parse), for callers that need more of it than the
// retention without reading it again.
func (e *Engine) Server() state.Server { return e.server }

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
