package rollforward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/jecloud/jecloud/internal/appuser"
	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/configvars"
	"github.com/jecloud/jecloud/internal/hook"
	"github.com/jecloud/jecloud/internal/plan"
	"github.com/jecloud/jecloud/internal/state"
)

// destroy removes an app environment that app.json asks to destroy
// (plan.Destroy), in an order that a crash at any point leaves for the
// next run to finish: app.json, which says "destroy", goes last, and
// until then the environment is neither routed nor deployed nor live.
//  1. every hook's destroy phase, in reverse order (the app's processes
//     stop before the services they use; the node hook removes the user
//     once nothing runs as it);
//  2. its releases and bundles (source/), its config vars and the
//     services' variables, its home; with Data, everything else but
//     app.json;
//  3. app.json (state.RemoveApp, under its lock), then the empty
//     directories.
func (e *Engine) destroy(o *plan.Env) func(context.Context) error {
	return func(ctx context.Context) error {
		ae := o.AppEnv
		d := o.App.Destroy
		hooks, err := e.Hooks()
		if err != nil {
			return err
		}
		hooks = slices.Clone(hooks)
		slices.Reverse(hooks)
		req := hook.Request{Phase: hook.Destroy, App: ae.App, Env: ae.Env,
			Root: e.Layout.Root, AppDir: e.Layout.AppDir(ae), Data: d.Data}
		if v := o.App.CurrentVersion; v != "" {
			req.Version, req.ReleaseDir = v, e.Layout.Release(ae, v)
		}
		req.ReadServer()
		e.fault("destroy:hooks")
		if _, err := hook.RunPhase(ctx, hooks, req, e.appLog(ae), nil); err != nil {
			return err
		}
		e.fault("destroy:hooked")
		dir := e.Layout.AppDir(ae)
		var remove []string
		if d.Data {
			entries, err := os.ReadDir(dir)
			if err != nil {
				return err
			}
			for _, ent := range entries {
				if n := ent.Name(); n != "app.json" && n != ".app.json.lock" {
					remove = append(remove, filepath.Join(dir, n))
				}
			}
		} else {
			for _, n := range []string{"source", configvars.FileName, appuser.ServicesEnv, "home"} {
				remove = append(remove, filepath.Join(dir, n))
			}
		}
		for _, p := range remove {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		}
		if err := atomicfile.SyncDir(dir); err != nil {
			return err
		}
		e.fault("destroy:removed")
		if err := state.RemoveApp(e.Layout.AppJSON(ae)); err != nil {
			return err
		}
		what := "its data stays in " + dir
		if d.Data {
			what = "its data too"
			os.Remove(filepath.Join(dir, ".app.json.lock"))
			if os.Remove(dir) == nil {
				os.Remove(filepath.Dir(dir)) // ROOT/APP, if no other environment is left
			}
		}
		e.logf(ae, "destroyed (%s)", what)
		return nil
	}
}

// FollowDestroy waits until the app environment ae is destroyed (its
// app.json is gone), copying its log lines from byte offset logFrom to
// out, and kicking a roll-forward (kick) every few seconds when none
// holds the lock. It fails with the step's error as soon as the destroy
// step has failed (it backs off, and the next run tries again).
func FollowDestroy(ctx context.Context, l state.Layout, ae state.AppEnv, logFrom int64, out io.Writer, kick func() error) error {
	f := newFollower(l, ae, logFrom, out, kick)
	defer f.close()
	for {
		f.tail.copy(out)
		var a state.App
		err := state.Read(l.AppJSON(ae), &a)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			f.tail.copy(out)
			return nil
		case err != nil:
			return err
		case a.Destroy == nil:
			return fmt.Errorf("%s: app.json no longer asks to be destroyed (edited by hand?): nothing more is removed", ae)
		case a.Backoff != nil && a.Backoff.Step == plan.Destroy:
			return fmt.Errorf("destroying %s failed (attempt %d; the roll-forward tries again at %s, or run `jeagent destroy %s %s` again): %s",
				ae, a.Backoff.Failures, a.Backoff.NextTry.Format(time.RFC3339), ae.App, ae.Env, a.Backoff.LastError)
		}
		if err := f.kickIfIdle(); err != nil {
			return err
		}
		if err := f.wait(ctx); err != nil {
			return err
		}
	}
}
