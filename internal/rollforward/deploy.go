package rollforward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jecloud/jecloud/internal/appspec"
	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/bundle"
	"github.com/jecloud/jecloud/internal/bytecount"
	"github.com/jecloud/jecloud/internal/configvars"
	"github.com/jecloud/jecloud/internal/hook"
	"github.com/jecloud/jecloud/internal/plan"
	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
)

// failure is a deployment that cannot succeed (a bad bundle, a hook that
// said no): it is recorded in recent_failed_deployments at once, not retried.
type failure struct{ reason string }

func (f *failure) Error() string { return f.reason }

func failf(format string, args ...any) error { return &failure{fmt.Sprintf(format, args...)} }

// advance persists the deployment's move from the state the step planned
// from to next (after fn, if any, edits it further). If the deployment
// changed meanwhile (a newer request), nothing is written: the newest wins.
func (e *Engine) advance(o *plan.Env, next string, fn func(*state.App)) error {
	planned := *o.App.Deployment
	_, err := state.UpdateApp(e.Layout.AppJSON(o.AppEnv), func(a *state.App) error {
		d := a.Deployment
		if d == nil || d.Version != planned.Version || d.State != planned.State {
			return errSuperseded
		}
		d.State = next
		a.Backoff = nil // progress: whatever was failing has passed
		if fn != nil {
			fn(a)
		}
		return nil
	})
	if errors.Is(err, errSuperseded) {
		e.logf(o.AppEnv, "deployment of %s was superseded while it ran; dropping its step", planned.Version)
		return nil
	}
	if err == nil && next != "" {
		e.fault("after:" + next)
	}
	return err
}

var errSuperseded = errors.New("the deployment changed while the step ran")

func (e *Engine) requestCurrent(o *plan.Env) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := state.UpdateApp(e.Layout.AppJSON(o.AppEnv), func(a *state.App) error {
			if a.Deployment != nil || a.CurrentVersion != o.App.CurrentVersion {
				return errSuperseded
			}
			want := a.CurrentVersion
			// current_version keeps saying what is live; the deployment
			// will set it when want is.
			a.CurrentVersion = o.Live
			if o.Live == "" {
				a.CurrentVersion = ""
			}
			a.Request(want, e.now(), false)
			return nil
		})
		if errors.Is(err, errSuperseded) {
			return nil
		}
		return err
	}
}

func (e *Engine) start(o *plan.Env) func(context.Context) error {
	return func(ctx context.Context) error {
		d := o.App.Deployment
		dir, bundleOK := o.Has(d.Version)
		next := state.StateVerifying
		switch {
		case o.Live == d.Version:
			next = state.StateStarting // already live: restart it
		case dir:
			next = state.StateInstalling // an earlier release: no need to unpack again
		case !bundleOK:
			return failf("version %s is not on this server (no %s): push it with `jepush`, or upload it with `jeagent receive`",
				d.Version, e.Layout.Bundle(o.AppEnv, d.Version))
		}
		return e.advance(o, next, func(a *state.App) {
			if a.Deployment.StartDate.IsZero() {
				a.Deployment.StartDate = e.now()
			}
			if a.Deployment.RequestDate.IsZero() {
				a.Deployment.RequestDate = e.now()
			}
			a.Deployment.PreviousVersion = a.CurrentVersion
		})
	}
}

func (e *Engine) verify(o *plan.Env) func(context.Context) error {
	return func(ctx context.Context) error {
		v := o.App.Deployment.Version
		path := e.Layout.Bundle(o.AppEnv, v)
		var rc state.Receipt
		if err := state.Read(e.Layout.Receipt(o.AppEnv, v), &rc); err == nil {
			if _, err := os.Stat(path); err == nil {
				e.logf(o.AppEnv, "%s.tar.zst was checked when it was received (%s of content): extraction hashes it again", v, bytecount.Format(rc.ContentBytes))
				return e.advance(o, state.StateExtracting, func(a *state.App) { a.Deployment.TarBytes = rc.ContentBytes })
			}
		}
		f, err := os.Open(path)
		if err != nil {
			if isNotExist(err) {
				return failf("bundle %s disappeared before it was verified: push it again", path)
			}
			return err
		}
		info, err := bundle.Inspect(f, e.limits())
		f.Close()
		var unsafe *bundle.UnsafeEntryError
		switch {
		case err != nil && (errors.As(err, &unsafe) || errors.Is(err, bundle.ErrTooLarge) || !isIOError(err)):
			e.discard(o.AppEnv, v)
			return failf("bundle %s refused: %v", filepath.Base(path), err)
		case err != nil:
			return err
		case info.ID != v:
			e.discard(o.AppEnv, v)
			return failf("bundle %s is corrupted: its content hashes to %s, not %s; push it again", filepath.Base(path), info.ID, v)
		}
		return e.advance(o, state.StateExtracting, func(a *state.App) { a.Deployment.TarBytes = info.ContentBytes })
	}
}

// discard removes a bundle that can never deploy, so that the next push
// uploads it afresh instead of finding it present.
func (e *Engine) discard(ae state.AppEnv, id string) {
	os.Remove(e.Layout.Receipt(ae, id))
	if err := os.Remove(e.Layout.Bundle(ae, id)); err == nil {
		e.logf(ae, "removed %s", e.Layout.Bundle(ae, id))
	}
}

// isIOError tells errors of the machine (worth a retry) from errors of the
// bundle's content.
func isIOError(err error) bool {
	var pe *os.PathError
	var errno syscall.Errno
	return errors.As(err, &pe) || errors.As(err, &errno)
}

func (e *Engine) extract(o *plan.Env) func(context.Context) error {
	return func(ctx context.Context) error {
		d := o.App.Deployment
		v := d.Version
		final := e.Layout.Release(o.AppEnv, v)
		if fi, err := os.Stat(final); err == nil && fi.IsDir() {
			return e.advance(o, state.StateInstalling, nil) // renamed before a crash
		}
		need := d.TarBytes + e.DiskReserve
		if free, err := freeBytes(e.Layout.Versions(o.AppEnv)); err == nil && free < need {
			return failf("out of disk space: %s needs %s plus a reserve of %s, %s free in %s; free some space, then deploy again",
				v, bytecount.Format(d.TarBytes), bytecount.Format(e.DiskReserve), bytecount.Format(free), e.Layout.Versions(o.AppEnv))
		}
		tmp := filepath.Join(e.Layout.Versions(o.AppEnv), "."+v+".extract-"+randomSuffix())
		if err := os.Mkdir(tmp, 0o755); err != nil {
			return err
		}
		err := e.unpack(o.AppEnv, v, tmp)
		if err != nil {
			os.RemoveAll(tmp)
			if errors.Is(err, syscall.ENOSPC) {
				return failf("out of disk space while unpacking %s into %s; free some space, then deploy again", v, e.Layout.Versions(o.AppEnv))
			}
			return err
		}
		if err := os.Rename(tmp, final); err != nil {
			os.RemoveAll(tmp)
			return err
		}
		if err := atomicfile.SyncDir(filepath.Dir(final)); err != nil {
			return err
		}
		e.fault("extract:renamed")
		return e.advance(o, state.StateInstalling, nil)
	}
}

func (e *Engine) unpack(ae state.AppEnv, v, dir string) error {
	f, err := os.Open(e.Layout.Bundle(ae, v))
	if err != nil {
		if isNotExist(err) {
			return failf("bundle %s disappeared during the deployment: push it again", e.Layout.Bundle(ae, v))
		}
		return err
	}
	defer f.Close()
	r := io.Reader(f)
	if e.Fault != nil {
		half := int64(1)
		if fi, err := f.Stat(); err == nil && fi.Size() > 2 {
			half = fi.Size() / 2
		}
		r = &faultReader{r: f, at: half, fn: func() { e.fault("extract:mid") }}
	}
	info, err := bundle.Extract(r, dir, e.limits())
	if err != nil {
		if isIOError(err) {
			return err
		}
		e.discard(ae, v)
		return failf("unpacking %s: %v; push it again", filepath.Base(e.Layout.Bundle(ae, v)), err)
	}
	if info.ID != v {
		e.discard(ae, v)
		return failf("bundle %s.tar.zst changed after it was verified: its content hashes to %s; push it again", v, info.ID)
	}
	// One sync of the filesystem makes every extracted file durable before
	// the rename publishes the release.
	return syncFS(dir)
}

func (e *Engine) runPhase(o *plan.Env, phase, next string) func(context.Context) error {
	return func(ctx context.Context) error {
		d := o.App.Deployment
		if phase == hook.Install {
			// The release's jecloud.toml, Procfile and package.json, checked
			// as jepush check does, before a hook reads them: a mistake is
			// the release's, not the first hook's. A release that was live
			// here before (a rollback, a redeploy) is not refused for a key
			// this agent does not know: it ran, and must run again.
			check := appspec.Check
			if d.Rollback || o.App.WasLive(d.Version) {
				check = appspec.Read
			}
			if _, err := check(e.Layout.Release(o.AppEnv, d.Version)); err != nil {
				return failf("the release does not pass jepush check: %v", err)
			}
		}
		if err := e.callHooks(ctx, o, phase, d.Version, d.PreviousVersion); err != nil {
			return err
		}
		if phase == hook.Prepare {
			next = e.afterPrepare(o)
		}
		return e.advance(o, next, nil)
	}
}

// callHooks runs every hook for phase; a hook's failure is a failure of the deployment.
func (e *Engine) callHooks(ctx context.Context, o *plan.Env, phase, version, previous string) error {
	hooks, err := e.Hooks()
	if err != nil {
		return err
	}
	ae := o.AppEnv
	req := hook.Request{Phase: phase, App: ae.App, Env: ae.Env, Version: version,
		ReleaseDir: e.Layout.Release(ae, version), Root: e.Layout.Root, AppDir: e.Layout.AppDir(ae),
		PreviousVersion: previous, Scale: o.App.Scale, Placement: o.App.Placement}
	if d := o.App.Deployment; d != nil && phase == hook.Deployed && version == d.Version && d.PreviousVersion == d.Version {
		req.Types = d.Types // a restart of some process types only
	}
	req.ReadServer()
	// The vars hooks return reach the later phases and the app's units
	// (docs/hooks.md): kept per version, beside its bundle, from install
	// on (where they start afresh) until the release is removed.
	varsFile := e.Layout.HookVars(ae, version)
	if phase == hook.Install {
		if err := os.Remove(varsFile); err != nil && !isNotExist(err) {
			return err
		}
	} else if req.Vars, err = configvars.Read(varsFile); err != nil {
		return err
	}
	save := func(vars map[string]string) error {
		return configvars.Save(varsFile, "Variables the hooks returned for this version, written by jeagent (docs/hooks.md). Read by systemd for the app's units.", vars, 0o600, -1)
	}
	e.fault("hook:" + phase)
	_, err = hook.RunPhase(ctx, hooks, req, e.appLog(ae), save)
	var he *hook.Error
	if errors.As(err, &he) {
		return &failure{he.Error()}
	}
	return err
}

func (e *Engine) switchCurrent(o *plan.Env) func(context.Context) error {
	return func(ctx context.Context) error {
		v := o.App.Deployment.Version
		// A load balancer in front is told first (the health path says
		// "draining"), and given the time it takes to see it.
		if err := e.lbDrain(ctx, o.AppEnv, true); err != nil {
			return err
		}
		if err := atomicfile.Symlink(v, e.Layout.Current(o.AppEnv)); err != nil {
			return err
		}
		e.fault("switch:done")
		return e.advance(o, state.StateStarting, nil)
	}
}

func (e *Engine) startApp(o *plan.Env) func(context.Context) error {
	return func(ctx context.Context) error {
		d := o.App.Deployment
		err := e.callHooks(ctx, o, hook.Deployed, d.Version, d.PreviousVersion)
		var f *failure
		switch {
		case errors.As(err, &f):
			if d.PreviousVersion == d.Version {
				return f // a restart of what was live: it stays live
			}
			prevDir, _ := o.Has(d.PreviousVersion)
			if d.PreviousVersion == "" || !prevDir {
				// Nothing to go back to: take the failed release offline.
				if rerr := os.Remove(e.Layout.Current(o.AppEnv)); rerr != nil && !isNotExist(rerr) {
					return rerr
				}
				return f
			}
			return e.advance(o, state.StateRollingBack, func(a *state.App) { a.Deployment.FailReason = f.reason })
		case err != nil:
			return err
		}
		// Served: the health path says "ok" again, and the deployment is
		// reported live once a load balancer in front has seen it.
		if err := e.lbDrain(ctx, o.AppEnv, false); err != nil {
			return err
		}
		now := e.now()
		watch := e.startWatch(ctx, o, d, now)
		return e.finish(o, func(a *state.App) {
			a.Succeed(now)
			if watch != nil || d.PreviousVersion != d.Version {
				a.Watch = watch // a restart keeps the watch it had
			}
		})
	}
}

func (e *Engine) rollBack(o *plan.Env) func(context.Context) error {
	return func(ctx context.Context) error {
		d := o.App.Deployment
		prev := d.PreviousVersion
		if err := atomicfile.Symlink(prev, e.Layout.Current(o.AppEnv)); err != nil {
			return err
		}
		e.fault("rollback:switched")
		reason := d.FailReason + "; rolled back to " + prev
		err := e.callHooks(ctx, o, hook.Deployed, prev, d.Version)
		var f *failure
		switch {
		case errors.As(err, &f):
			reason = d.FailReason + "; rolled back to " + prev + ", but restarting it failed too: " + f.reason
		case err != nil:
			return err
		}
		return e.finish(o, func(a *state.App) {
			a.CurrentVersion = prev
			a.Fail(reason, e.now())
		})
	}
}

// lbDrain makes ae's health path on the front door say "draining" (on) or
// "ok" again, then waits server.json's proxy.lb_wait, the time a load
// balancer in front takes to see it (routes.HealthPath). Without the front
// door it does nothing; with no lb_wait it does not wait. A marker left
// by a run that stopped half way is removed by the plan's leftovers.
func (e *Engine) lbDrain(ctx context.Context, ae state.AppEnv, on bool) error {
	if !routes.Installed(e.Layout) || routes.Draining(e.Layout, ae) == on {
		return nil
	}
	if on {
		// Only a web process in the front door has anything to drain
		// (not a first deploy, not an app without web).
		if u, err := routes.ReadUpstreams(e.Layout, ae); err != nil || len(u.Web) == 0 {
			return err
		}
	}
	var sv state.Server
	if err := state.Read(e.Layout.ServerJSON(), &sv); err != nil && !isNotExist(err) {
		return err
	}
	wait, err := sv.Proxy.LBWaitDuration()
	if err != nil {
		return err
	}
	if err := routes.SetDraining(e.Layout, ae, on); err != nil {
		return err
	}
	if wait == 0 {
		return nil
	}
	say := "draining"
	if !on {
		say = "ok"
	}
	e.logf(ae, "the front door's health path says %q: waiting %s (proxy.lb_wait) for a load balancer in front to see it", say, wait)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// finish ends the deployment the step planned from with fn.
func (e *Engine) finish(o *plan.Env, fn func(*state.App)) error {
	planned := *o.App.Deployment
	_, err := state.UpdateApp(e.Layout.AppJSON(o.AppEnv), func(a *state.App) error {
		d := a.Deployment
		if d == nil || d.Version != planned.Version || d.State != planned.State {
			return errSuperseded
		}
		fn(a)
		return nil
	})
	if errors.Is(err, errSuperseded) {
		return nil
	}
	return err
}
