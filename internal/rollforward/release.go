package rollforward

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/jecloud/jecloud/internal/appspec"
	"github.com/jecloud/jecloud/internal/oneoff"
	"github.com/jecloud/jecloud/internal/plan"
	"github.com/jecloud/jecloud/internal/state"
)

// ReleaseFunc runs a release command as process p for at most timeout,
// streaming its output to log (oneoff.RunRelease); a *oneoff.ReleaseError
// fails the deployment, another error is retried.
type ReleaseFunc func(ctx context.Context, p oneoff.Process, command string, timeout time.Duration, log io.Writer) error

// afterPrepare is the state after the prepare hooks: releasing if the
// release has a release command, else switching.
// A rollback does not run it, as on Heroku: the release ran it when it was
// deployed, and the schema has moved on since.
func (e *Engine) afterPrepare(o *plan.Env) string {
	d := o.App.Deployment
	spec, err := appspec.Read(e.Layout.Release(o.AppEnv, d.Version))
	switch {
	case err != nil || spec.Release == "":
		return state.StateSwitching
	case d.Rollback:
		e.logf(o.AppEnv, "release: a rollback does not run the release command %q", spec.Release)
		return state.StateSwitching
	}
	return state.StateReleasing
}

// release runs the Procfile's release command (database migrations) once,
// after prepare and before the switch. The state says releasing until it
// has succeeded: a run killed meanwhile runs it again, from the start, on
// the next roll-forward; once the deployment has moved on to switching it
// never runs again, not on a restart nor a rollback to this release.
func (e *Engine) release(o *plan.Env) func(context.Context) error {
	return func(ctx context.Context) error {
		ae, v := o.AppEnv, o.App.Deployment.Version
		dir := e.Layout.Release(ae, v)
		spec, err := appspec.Read(dir)
		if err != nil {
			return failf("the release does not pass jepush check: %v", err)
		}
		if spec.Release == "" {
			return e.advance(o, state.StateSwitching, nil)
		}
		if e.Release == nil {
			e.logf(ae, "systemd is not running here: the release command %q of %s was not run", spec.Release, v)
			return e.advance(o, state.StateSwitching, nil)
		}
		hooks, err := e.Hooks()
		if err != nil {
			return err
		}
		hs := make([]any, len(hooks))
		for i, h := range hooks {
			hs[i] = h
		}
		p, err := oneoff.For(e.Layout.Root, ae.App, ae.Env, e.Layout.AppDir(ae), dir, spec, appspec.ReleaseType, hs)
		if err != nil {
			return failf("the release command cannot run: %v", err)
		}
		e.logf(ae, "release: running %q in %s as %s (time limit %s)", spec.Release, v, p.User, spec.ReleaseTimeout())
		e.fault("release:run")
		start := time.Now()
		err = e.Release(ctx, p, spec.Release, spec.ReleaseTimeout(), e.appLog(ae))
		var re *oneoff.ReleaseError
		if errors.As(err, &re) {
			return &failure{v + " was not switched to: " + re.Error()}
		}
		if err != nil {
			return err
		}
		e.logf(ae, "release: the release command succeeded in %s", time.Since(start).Round(time.Second))
		return e.advance(o, state.StateSwitching, nil)
	}
}
