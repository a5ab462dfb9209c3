package rollforward

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/hook"
	"github.com/jecloud/jecloud/internal/state"
)

// removable returns the releases cleanup may remove, in the order it
// removes them: failed ones first, then the oldest. It never returns the
// live release, current_version, the last good one before it, a pending
// deployment's version (or the one it would roll back to), or anything
// younger than the retention's minimum age.
func removable(o *observed, r state.Retention, now time.Time) []*release {
	protected := map[string]bool{o.live: true, o.app.CurrentVersion: true, o.app.LastGood(): true}
	if d := o.app.Deployment; d != nil {
		protected[d.Version] = true
		protected[d.PreviousVersion] = true
	}
	aborted := map[string]bool{}
	for _, v := range o.app.AbortedDeploymentVersions {
		aborted[v] = true
	}
	// Good releases go only while more than Keep remain: with Keep or fewer
	// on disk none can, and their age is not even read.
	goodMayGo := len(o.releases) > r.Keep()
	var failed, good []*release
	for id, rel := range o.releases {
		if protected[id] {
			continue
		}
		isFailed := o.app.Failed(id) || aborted[id] && !deployedEver(o.app, id)
		if !isFailed && !goodMayGo || now.Sub(rel.modTime()) < r.MinAge() {
			continue
		}
		if isFailed {
			failed = append(failed, rel)
		} else {
			good = append(good, rel)
		}
	}
	byAge := func(s []*release) {
		sort.Slice(s, func(i, j int) bool {
			if a, b := s[i].modTime(), s[j].modTime(); !a.Equal(b) {
				return a.Before(b)
			}
			return s[i].id < s[j].id
		})
	}
	byAge(failed)
	byAge(good)
	// Good releases go only while more than Keep releases remain.
	excess := len(o.releases) - len(failed) - r.Keep()
	if excess < 0 {
		excess = 0
	}
	if excess < len(good) {
		good = good[:excess]
	}
	return append(failed, good...)
}

func deployedEver(a *state.App, id string) bool {
	for _, d := range a.DeployedVersions {
		if d.Version == id {
			return true
		}
	}
	return false
}

func (e *Engine) planCleanup(o *observed, r state.Retention, now time.Time) (Step, bool) {
	rm := removable(o, r, now)
	if len(rm) == 0 {
		return Step{}, false
	}
	rel := rm[0]
	why := "older than " + r.MinAge().String() + " and more than " + fmt.Sprint(r.Keep()) + " releases kept"
	if o.app.Failed(rel.id) {
		why = "failed deployment, older than " + r.MinAge().String()
	}
	return Step{AppEnv: o.ae, Name: "cleanup", Reason: "remove release " + rel.id + ": " + why,
		apply: e.removeRelease(o, rel)}, true
}

// removeRelease calls the cleanup hooks, then removes the release: first
// renamed out of the way (so a half-removed tree is never taken for a
// release), then deleted, then its bundle.
func (e *Engine) removeRelease(o *observed, rel *release) func(context.Context) error {
	return func(ctx context.Context) error {
		if rel.dir {
			// A failed cleanup hook is not a deployment's failure: the step backs off and retries.
			if err := e.callHooks(ctx, o, hook.Cleanup, rel.id, ""); err != nil {
				return err
			}
			dir := e.Layout.Release(o.ae, rel.id)
			trash := filepath.Join(filepath.Dir(dir), "."+rel.id+".deleting-"+randomSuffix())
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
		for _, p := range []string{e.Layout.Bundle(o.ae, rel.id), e.Layout.Receipt(o.ae, rel.id)} {
			if err := os.Remove(p); err != nil && !isNotExist(err) {
				return err
			}
		}
		_, err := state.UpdateApp(e.Layout.AppJSON(o.ae), func(a *state.App) error {
			if a.Backoff != nil && a.Backoff.Step == "cleanup" {
				a.Backoff = nil
			}
			return nil
		})
		return err
	}
}
