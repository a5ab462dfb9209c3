package rollforward

import (
	"context"
	"os"
	"path/filepath"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/hook"
	"github.com/jecloud/jecloud/internal/plan"
	"github.com/jecloud/jecloud/internal/state"
)

// removeRelease calls the cleanup hooks, then removes the release: first
// renamed out of the way (so a half-removed tree is never taken for a
// release), then deleted, then its bundle.
func (e *Engine) removeRelease(o *plan.Env, rel *plan.Release) func(context.Context) error {
	return func(ctx context.Context) error {
		if rel.Dir {
			// A failed cleanup hook is not a deployment's failure: the step backs off and retries.
			if err := e.callHooks(ctx, o, hook.Cleanup, rel.ID, ""); err != nil {
				return err
			}
			dir := e.Layout.Release(o.AppEnv, rel.ID)
			trash := filepath.Join(filepath.Dir(dir), "."+rel.ID+".deleting-"+randomSuffix())
			if err := os.Rename(dir, trash); err != nil && !isNotExist(err) {
				return err
			}
			if err := atomicfile.SyncDir(filepath.Dir(dir)); err != nil {
				return err
			}
			e.fault("cleanup:renamed")
			if err := os.RemoveAll(trash); err != nil {
				return err
			}
		}
		for _, p := range []string{e.Layout.HookVars(o.AppEnv, rel.ID), e.Layout.Bundle(o.AppEnv, rel.ID), e.Layout.Receipt(o.AppEnv, rel.ID)} {
			if err := os.Remove(p); err != nil && !isNotExist(err) {
				return err
			}
		}
		_, err := state.UpdateApp(e.Layout.AppJSON(o.AppEnv), func(a *state.App) error {
			if a.Backoff != nil && a.Backoff.Step == plan.Cleanup {
				a.Backoff = nil
			}
			return nil
		})
		return err
	}
}
