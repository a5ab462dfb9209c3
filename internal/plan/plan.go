// Package plan reads a server's state tree and says what the roll-forward
// must do next: the steps, most urgent first, each with a reason, and the
// app environments it must skip. It compares what each app.json asks for
// with what is on disk, and only reads; package rollforward carries the
// steps out. jeagent-tick links this package and not rollforward, so that
// an idle tick costs little more than reading the state files.
package plan

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
)

// Step names besides "deploy:" followed by a deployment state.
const (
	Leftovers = "leftovers"      // remove what interrupted work left behind
	Cleanup   = "cleanup"        // remove an old release
	GitBuild  = "git:build"      // fetch and bundle a pushed commit
	Request   = "deploy:request" // deploy the current_version a hand edit set
	Route     = "route"          // load the front door's configuration (package routes)
	Watch     = "watch"          // count a new release's restarts (the crash-loop watchdog)
	Destroy   = "destroy"        // remove an app environment (app.json "destroy")
)

// WatchEvery is how often the watchdog counts the restarts of a release
// that just went live (app.json "watch").
const WatchEvery = 30 * time.Second

// DeployStep is the name of the step that carries a deployment out of st.
func DeployStep(st string) string { return "deploy:" + st }

// Step is one thing to do, and why.
type Step struct {
	AppEnv state.AppEnv
	Name   string // DeployStep(state), Leftovers, Cleanup, GitBuild, Request, Route, Watch or Destroy
	Reason string
	// Env is the app environment as observed when the step was planned.
	Env *Env
	// Deployment is the deployment a deploy step carries out (the one in
	// Env.App); the step's name says the state it resumes from: app.json's,
	// or an earlier one when the disk overrules it.
	Deployment *state.Deployment
	// Release is the release a Cleanup step removes.
	Release *Release
	// Paths are what a Leftovers step removes.
	Paths []string
	// Commit is the commit a GitBuild step builds.
	Commit state.GitCommit
}

func (s Step) String() string { return fmt.Sprintf("%s: %s (%s)", s.AppEnv, s.Name, s.Reason) }

// Problem is an app environment the roll-forward cannot work on (its
// app.json does not parse, or it is backing off); the others go on. A
// server.json that does not parse is a Problem of ServerAppEnv.
type Problem struct {
	AppEnv state.AppEnv
	Err    error
}

// ServerAppEnv stands for sys/server.json in a Problem.
var ServerAppEnv = state.AppEnv{App: "sys", Env: "server.json"}

// Plan is what Make found to do.
type Plan struct {
	Steps    []Step
	Problems []Problem
	// Server is sys/server.json as read (zero if missing or unparsable).
	Server state.Server
}

// Make observes the tree under l at time now and plans. With
// ignoreBackoff, steps that are backing off after failures are planned
// now instead of being reported as problems.
func Make(l state.Layout, now time.Time, ignoreBackoff bool) (Plan, error) {
	// Folders without an app.json are skipped when observe finds none.
	aes, err := l.EnvDirs()
	if err != nil {
		return Plan{}, fmt.Errorf("list app environments under %s: %w", l.Root, err)
	}
	var p Plan
	var leftovers, cleanups, gits, deploys, destroys []Step
	var doors []routes.Env
	doorsOK := routes.Installed(l)
	// server.json only sets the retention of old releases: a hand edit of
	// it that does not parse pauses the cleanup (nothing is removed under
	// an unknown retention) and stops no deployment.
	cleanupPaused := false
	if err := state.Read(l.ServerJSON(), &p.Server); err != nil && !isNotExist(err) {
		var pe *state.ParseError
		if !errors.As(err, &pe) {
			return Plan{}, err
		}
		p.Server = state.Server{}
		cleanupPaused = true
		doorsOK = false // the routes stay as they are until it parses
		p.Problems = append(p.Problems, Problem{ServerAppEnv, fmt.Errorf("cleanup of old releases is paused: %w", err)})
	}
	// backingOff reports s as a problem while its backoff lasts.
	backingOff := func(o *Env, s Step, what func(*state.Backoff) string) bool {
		b := o.App.Backoff
		if b == nil || b.Step != s.Name || !now.Before(b.NextTry) || ignoreBackoff {
			return false
		}
		p.Problems = append(p.Problems, Problem{o.AppEnv, fmt.Errorf("%s until %s: %s", what(b), b.NextTry.Format(time.RFC3339), b.LastError)})
		return true
	}
	switching := map[state.AppEnv]bool{} // the front door's health path may say "draining"
	for _, ae := range aes {
		o, err := observe(l, ae)
		if isNotExist(err) {
			continue // app.json went away since the listing
		}
		if err != nil {
			p.Problems = append(p.Problems, Problem{ae, err})
			doorsOK = false // its routes stay as they are until it parses
			continue
		}
		if o.App.Destroy != nil {
			// Never routed, deployed or cleaned again: only destroyed
			// (after the front door has stopped routing to it).
			if s, ok := planLeftovers(o, now); ok {
				leftovers = append(leftovers, s)
			}
			if s := planDestroy(o); !backingOff(o, s, failing) {
				destroys = append(destroys, s)
			}
			continue
		}
		if doorsOK {
			e, err := routes.EnvOf(l, ae, o.App)
			if err != nil {
				p.Problems = append(p.Problems, Problem{ae, fmt.Errorf("the front door keeps its routes: %w", err)})
				doorsOK = false
			}
			doors = append(doors, e)
		}
		if d := o.App.Deployment; d != nil && (d.State == state.StateSwitching || d.State == state.StateStarting || d.State == state.StateRollingBack) {
			switching[ae] = true
		}
		if s, ok := planLeftovers(o, now); ok {
			leftovers = append(leftovers, s)
		}
		if s, ok := planGit(o); ok && !backingOff(o, s, failing) {
			gits = append(gits, s)
		}
		if s, ok := planDeployment(o); ok && !backingOff(o, s, failing) {
			deploys = append(deploys, s)
		}
		if s, ok := planWatch(o, now); ok && !backingOff(o, s, failing) {
			deploys = append(deploys, s)
		}
		if s, ok := planCleanup(o, p.Server.Retention, now); ok && !cleanupPaused && !backingOff(o, s, cleanupWait) {
			cleanups = append(cleanups, s)
		}
	}
	if s, ok := planDrainMarkers(l, switching); ok {
		leftovers = append(leftovers, s)
	}
	var route []Step
	if doorsOK {
		if s, ok := planRoute(l, p.Server, doors, now); ok && !backingOff(&Env{AppEnv: ServerAppEnv, App: &state.App{Backoff: p.Server.Backoff}}, s, failing) {
			route = append(route, s)
		}
	}
	// Leftovers first, then cleanup (it frees the disk a deployment needs),
	// then the front door's routes (an app environment being destroyed
	// leaves them first), then environments being destroyed, then builds
	// of pushed commits (each requests a deployment), then deployments.
	p.Steps = append(append(append(append(append(leftovers, cleanups...), route...), destroys...), gits...), deploys...)
	return p, nil
}

// planDestroy plans removing an app environment that app.json asks to
// destroy.
func planDestroy(o *Env) Step {
	d := o.App.Destroy
	what := "its data stays"
	if d.Data {
		what = "its data too"
	}
	return Step{AppEnv: o.AppEnv, Name: Destroy, Env: o,
		Reason: fmt.Sprintf("destroy requested at %s (%s)", d.RequestDate.Format(time.RFC3339), what)}
}

// planWatch plans counting the restarts of the release that last went
// live, every WatchEvery while its watch lasts, and once more when it
// ends; or forgetting a watch on a release that is no longer live.
func planWatch(o *Env, now time.Time) (Step, bool) {
	w := o.App.Watch
	if w == nil || o.App.Deployment != nil {
		return Step{}, false // a deployment under way comes first
	}
	switch {
	case w.Version != o.App.CurrentVersion:
		return Step{AppEnv: o.AppEnv, Name: Watch, Env: o, Reason: fmt.Sprintf("the watchdog's release %s is no longer live: forgetting it", w.Version)}, true
	case !now.Before(w.Until):
		return Step{AppEnv: o.AppEnv, Name: Watch, Env: o, Reason: fmt.Sprintf("the watchdog's window on %s ended at %s: last count", w.Version, w.Until.Format(time.RFC3339))}, true
	case now.Sub(w.Checked) >= WatchEvery:
		return Step{AppEnv: o.AppEnv, Name: Watch, Env: o, Reason: fmt.Sprintf("crash-loop watchdog on %s until %s (%d restarts so far, at most %d)", w.Version, w.Until.Format(time.RFC3339), w.Restarts, w.MaxRestarts)}, true
	}
	return Step{}, false
}

// planDrainMarkers plans removing the markers that make an app
// environment's health path say "draining" (routes.DrainMarker) when it is
// not being switched: a run stopped between setting one and the end of
// its deployment left it.
func planDrainMarkers(l state.Layout, switching map[state.AppEnv]bool) (Step, bool) {
	entries, err := os.ReadDir(routes.DrainDir(l))
	if err != nil {
		return Step{}, false
	}
	var remove []string
	for _, ent := range entries {
		app, env, _ := strings.Cut(ent.Name(), "_")
		if !switching[state.AppEnv{App: app, Env: env}] {
			remove = append(remove, filepath.Join(routes.DrainDir(l), ent.Name()))
		}
	}
	if len(remove) == 0 {
		return Step{}, false
	}
	return Step{AppEnv: ServerAppEnv, Name: Leftovers, Paths: remove,
		Reason: fmt.Sprintf("the front door's health path says draining for %d app environment(s) not being switched, e.g. %s", len(remove), filepath.Base(remove[0]))}, true
}

// planRoute plans loading the front door's configuration when what the
// state renders differs from what the proxy last accepted, or when the
// proxy's ACME account is broken (loading it repairs that).
func planRoute(l state.Layout, s state.Server, envs []routes.Env, now time.Time) (Step, bool) {
	cfg, _ := routes.Render(routes.Gather(l, s, envs))
	if cfg.Equal(routes.Applied(l)) {
		if broken := routes.BrokenAccounts(routes.StorageDir, now); len(broken) > 0 {
			return Step{AppEnv: ServerAppEnv, Name: Route, Reason: "the front door's ACME account " + broken[0] + " does not parse: every certificate order fails until it is replaced"}, true
		}
		return Step{}, false
	}
	return Step{AppEnv: ServerAppEnv, Name: Route, Reason: "the front door's configuration is behind the state (domains, web instances, maintenance or certificates changed)"}, true
}

func failing(b *state.Backoff) string {
	return fmt.Sprintf("%s is backing off after %d failures", b.Step, b.Failures)
}

func cleanupWait(*state.Backoff) string { return "cleanup is backing off" }

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
