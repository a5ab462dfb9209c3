package plan

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/jecloud/jecloud/internal/state"
)

// removable returns the releases cleanup may remove, in the order it
// removes them: failed ones first, then the oldest. It never returns the
// live release, current_version, the last good one before it, a pending
// deployment's version (or the one it would roll back to), or anything
// younger than the retention's minimum age.
func removable(o *Env, r state.Retention, now time.Time) []*Release {
	protected := map[string]bool{o.Live: true, o.App.CurrentVersion: true, o.App.LastGood(): true}
	if d := o.App.Deployment; d != nil {
		protected[d.Version] = true
		protected[d.PreviousVersion] = true
	}
	// Good releases go only while more than Keep remain: with Keep or fewer
	// on disk none can, and their age is not even read.
	goodMayGo := len(o.Releases) > r.Keep()
	var failed, good []*Release
	for id, rel := range o.Releases {
		if protected[id] {
			continue
		}
		isFailed := o.App.Failed(id) || abortedOnly(o.App, id)
		if !isFailed && !goodMayGo || now.Sub(rel.ModTime()) < r.MinAge() {
			continue
		}
		if isFailed {
			failed = append(failed, rel)
		} else {
			good = append(good, rel)
		}
	}
	byAge := func(s []*Release) {
		sort.Slice(s, func(i, j int) bool {
			if a, b := s[i].ModTime(), s[j].ModTime(); !a.Equal(b) {
				return a.Before(b)
			}
			return s[i].ID < s[j].ID
		})
	}
	byAge(failed)
	byAge(good)
	// Good releases go only while more than Keep releases remain.
	excess := len(o.Releases) - len(failed) - r.Keep()
	if excess < 0 {
		excess = 0
	}
	if excess < len(good) {
		good = good[:excess]
	}
	return append(failed, good...)
}

// abortedOnly reports whether id's deployments were all replaced by newer
// requests before it ever went live: a release nobody will go back to.
func abortedOnly(a *state.App, id string) bool {
	return slices.Contains(a.AbortedDeploymentVersions, id) &&
		!slices.ContainsFunc(a.DeployedVersions, func(d state.Deployed) bool { return d.Version == id })
}

func planCleanup(o *Env, r state.Retention, now time.Time) (Step, bool) {
	rm := removable(o, r, now)
	if len(rm) == 0 {
		return Step{}, false
	}
	rel := rm[0]
	why := "older than " + r.MinAge().String() + " and more than " + fmt.Sprint(r.Keep()) + " releases kept"
	switch {
	case o.App.Failed(rel.ID):
		why = "failed deployment, older than " + r.MinAge().String()
	case abortedOnly(o.App, rel.ID):
		why = "deployment replaced before it went live, older than " + r.MinAge().String()
	}
	return Step{AppEnv: o.AppEnv, Name: Cleanup, Reason: "remove release " + rel.ID + ": " + why, Env: o, Release: rel}, true
}
