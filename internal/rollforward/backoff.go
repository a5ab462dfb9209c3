package rollforward

import (
	"errors"
	"fmt"
	"time"

	"github.com/jecloud/jecloud/internal/state"
)

// MaxAttempts is how many times a deployment step that keeps failing for
// reasons that may pass is tried before the deployment is failed.
const MaxAttempts = 8

// maxDelay caps the backoff between two attempts.
const maxDelay = time.Hour

// delay is the wait after the n-th consecutive failure: Fibonacci minutes
// (1, 1, 2, 3, 5, 8, ...), as the original agent did, capped at maxDelay.
func delay(n int) time.Duration {
	a, b := 1, 1
	for i := 1; i < n; i++ {
		a, b = b, a+b
	}
	d := time.Duration(a) * time.Minute
	if d > maxDelay {
		return maxDelay
	}
	return d
}

// recordError writes what a failed step means into app.json: a failed
// deployment for a *failure, else a backoff (and, after MaxAttempts, a
// failed deployment).
func (e *Engine) recordError(s Step, stepErr error) error {
	now := e.now()
	var f *failure
	permanent := errors.As(stepErr, &f)
	if s.AppEnv == ServerAppEnv {
		// A server-wide step: its backoff is in server.json.
		_, err := state.UpdateServer(e.Layout.ServerJSON(), func(sv *state.Server) error {
			sv.Backoff = next(sv.Backoff, s.Name, stepErr, now)
			e.logf(s.AppEnv, "%s failed (attempt %d, next try at %s): %v", s.Name, sv.Backoff.Failures, sv.Backoff.NextTry.Format(time.RFC3339), stepErr)
			return nil
		})
		return err
	}
	_, err := state.UpdateApp(e.Layout.AppJSON(s.AppEnv), func(a *state.App) error {
		if s.Deployment != nil {
			d := a.Deployment
			if d == nil || d.Version != s.Deployment.Version {
				return errSuperseded
			}
			if permanent {
				e.logf(s.AppEnv, "deployment of %s failed: %s", d.Version, f.reason)
				a.Fail(f.reason, now)
				return nil
			}
		}
		b := next(a.Backoff, s.Name, stepErr, now)
		if s.Deployment != nil && b.Failures >= MaxAttempts {
			reason := fmt.Sprintf("%s failed %d times; last error: %v", s.Name, b.Failures, stepErr)
			e.logf(s.AppEnv, "deployment of %s failed: %s", a.Deployment.Version, reason)
			a.Fail(reason, now)
			return nil
		}
		a.Backoff = b
		e.logf(s.AppEnv, "%s failed (attempt %d, next try at %s): %v", s.Name, b.Failures, b.NextTry.Format(time.RFC3339), stepErr)
		return nil
	})
	if errors.Is(err, errSuperseded) {
		return nil
	}
	return err
}

// next is backoff b after another failure of step.
func next(b *state.Backoff, step string, stepErr error, now time.Time) *state.Backoff {
	if b == nil || b.Step != step {
		b = &state.Backoff{Step: step}
	}
	b.Failures++
	b.LastError = stepErr.Error()
	b.LastDate = now
	b.NextTry = now.Add(delay(b.Failures))
	return b
}
