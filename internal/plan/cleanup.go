package plan

import (
	"fmt"
	"github.com/jecloud/jecloud/internal/bytecount"
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
	capped := overCap(o, r, protected)
	var failed, good []*Release
	for id, rel := range o.Releases {
		if protected[id] {
			continue
		}
		isFailed := o.App.Failed(id) || abortedOnly(o.App, id)
		if !isFailed && !goodMayGo || !capped[id] && now.Sub(rel.ModTime()) < r.MinAge() {
			continue
		}
		if isFailed {
			failed = append(failed, rel)
		} else {
			good = append(good, rel)
		}
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

// byAge sorts releases oldest first.
func byAge(s []*Release) {
	sort.Slice(s, func(i, j int) bool {
		if a, b := s[i].ModTime(), s[j].ModTime(); !a.Equal(b) {
			return a.Before(b)
		}
		return s[i].ID < s[j].ID
	})
}

// overCap returns the failed (or aborted-only) releases that go whatever
// their age: all but the newest KeepFailedReleases, and the oldest of those
// left while together they hold more than FailedMaxBytes. The newest
// failure always stays, to be looked at.
func overCap(o *Env, r state.Retention, protected map[string]bool) map[string]bool {
	var failed []*Release
	for id, rel := range o.Releases {
		if !protected[id] && (o.App.Failed(id) || abortedOnly(o.App, id)) {
			failed = append(failed, rel)
		}
	}
	if len(failed) <= 1 {
		return nil // the newest failure always stays: no size to read
	}
	byAge(failed)
	slices.Reverse(failed) // newest first
	capped := map[string]bool{}
	var total int64
	for i, rel := range failed {
		if i > 0 {
			total += rel.Size()
		} else {
			total = rel.Size()
		}
		if i >= r.KeepFailedReleases() || i > 0 && total > r.FailedMaxBytes() {
			capped[rel.ID] = true
		}
	}
	return capped
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
	kind := ""
	switch {
	case o.App.Failed(rel.ID):
		kind = "failed deployment"
	case abortedOnly(o.App, rel.ID):
		kind = "deployment replaced before it went live"
	}
	if kind != "" {
		why = kind + ", older than " + r.MinAge().String()
		if now.Sub(rel.ModTime()) < r.MinAge() {
			why = kind + ", " + capReason(o, r)
		}
	}
	return Step{AppEnv: o.AppEnv, Name: Cleanup, Reason: "remove release " + rel.ID + ": " + why, Env: o, Release: rel}, true
}

// capReason says which cap a young failed release is removed for.
func capReason(o *Env, r state.Retention) string {
	n := 0
	for id := range o.Releases {
		if o.App.Failed(id) || abortedOnly(o.App, id) {
			n++
		}
	}
	if n > r.KeepFailedReleases() {
		return fmt.Sprintf("more than %d failed releases kept", r.KeepFailedReleases())
	}
	return "failed releases over " + bytecount.Format(r.FailedMaxBytes())
}
