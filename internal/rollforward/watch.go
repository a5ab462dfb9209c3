package rollforward

import (
	"context"
	"fmt"
	"time"

	"github.com/coreos/go-systemd/v22/util"

	"github.com/jecloud/jecloud/internal/appspec"
	"github.com/jecloud/jecloud/internal/plan"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/jecloud/jecloud/internal/sysd"
)

// Watcher is who asks for the rollback the watchdog decides on (the
// deployment's "by").
const Watcher = "watchdog"

// startWatch puts the watchdog on d's release as it goes live, for the
// window its jecloud.toml gives ([watchdog]; 10 minutes by default), when
// there is a release to go back to: not for a first deploy, a restart or a
// rollback.
func (e *Engine) startWatch(ctx context.Context, o *plan.Env, d *state.Deployment, now time.Time) *state.Watch {
	if d.Rollback || d.PreviousVersion == "" || d.PreviousVersion == d.Version || e.Restarts == nil {
		return nil
	}
	if dir, _ := o.Has(d.PreviousVersion); !dir {
		return nil
	}
	spec, err := appspec.Read(e.Layout.Release(o.AppEnv, d.Version))
	if err != nil || spec.Watchdog.Window == 0 {
		return nil
	}
	// What they count already (the deploy's own checks may have seen a
	// restart) is not held against the release.
	base, err := e.Restarts(ctx, o.AppEnv, d.Version)
	if err != nil || base < 0 {
		return nil
	}
	return &state.Watch{Version: d.Version, Previous: d.PreviousVersion, Since: now,
		Until: now.Add(spec.Watchdog.Window), MaxRestarts: spec.Watchdog.Restarts, Checked: now, Baseline: base}
}

// watch counts the restarts of the release the watchdog is on. More than
// its jecloud.toml allows within the window: the release is recorded as
// failed, with why, and a rollback to the one before it is requested (it
// runs next, as `jeagent rollback` would). When the window ends, the watch
// is forgotten; outside it systemd only restarts.
func (e *Engine) watch(o *plan.Env) func(context.Context) error {
	return func(ctx context.Context) error {
		w := *o.App.Watch
		now := e.now()
		n := -1 // no longer live, or nothing to count with: the watch goes
		if w.Version == o.App.CurrentVersion && e.Restarts != nil {
			var err error
			if n, err = e.Restarts(ctx, o.AppEnv, w.Version); err != nil {
				return fmt.Errorf("the watchdog cannot count the restarts of %s: %w", w.Version, err)
			}
			if n >= 0 {
				n = max(n-w.Baseline, 0)
			}
		}
		_, err := state.UpdateApp(e.Layout.AppJSON(o.AppEnv), func(a *state.App) error {
			if a.Watch == nil || a.Watch.Version != w.Version || a.Deployment != nil {
				return errSuperseded
			}
			switch {
			case n < 0:
				a.Watch = nil
			case n > w.MaxRestarts:
				reason := fmt.Sprintf("crash loop: its processes restarted %d times in %s after it went live, more than the %d that jecloud.toml's [watchdog] allows; rolled back to %s",
					n, now.Sub(w.Since).Round(time.Second), w.MaxRestarts, w.Previous)
				e.logf(o.AppEnv, "watchdog: %s: %s", w.Version, reason)
				a.RecentFailedDeployments = append(a.RecentFailedDeployments, state.Failure{
					Version: w.Version, StartDate: w.Since, FailDate: now, State: "live", Reason: reason, By: Watcher})
				a.Request(w.Previous, now, true)
				a.Deployment.By = Watcher
				a.Watch = nil
			case !now.Before(w.Until):
				e.logf(o.AppEnv, "watchdog: %s ran through its window with %d restarts (at most %d): watch ended", w.Version, n, w.MaxRestarts)
				a.Watch = nil
			default:
				a.Watch.Checked, a.Watch.Restarts = now, n
			}
			return nil
		})
		if err == errSuperseded {
			return nil
		}
		return err
	}
}

// UnitRestarts counts, through systemd, how many times the processes of
// the release's process types (its Procfile; not the services) restarted
// by themselves since a deploy started them (NRestarts); -1 where systemd
// is not running.
func UnitRestarts(l state.Layout) func(ctx context.Context, ae state.AppEnv, version string) (int, error) {
	return func(ctx context.Context, ae state.AppEnv, version string) (int, error) {
		if !util.IsRunningSystemd() {
			return -1, nil // nothing restarts the processes here, nothing to count
		}
		spec, err := appspec.Read(l.Release(ae, version))
		if err != nil {
			return 0, err
		}
		ps, err := sysd.Processes(ctx, ae.App, ae.Env)
		if err != nil {
			return 0, err
		}
		n := 0
		for _, p := range ps {
			if _, ok := spec.Processes[p.Type]; ok {
				n += int(p.Restarts)
			}
		}
		return n, nil
	}
}
