package rollforward

import (
	"context"
	"errors"

	"github.com/jecloud/jecloud/internal/plan"
	"github.com/jecloud/jecloud/internal/state"
)

// buildGit builds the push the webhook accepted (app.json git.requested)
// and requests its deployment. What is built is the branch's tip on the
// git server when it is fetched, which is the pushed commit unless the
// delivery was replayed or overtaken by a newer push: git.built records
// the commit built.
func (e *Engine) buildGit(o *plan.Env, commit state.GitCommit) func(context.Context) error {
	return func(ctx context.Context) error {
		if e.BuildGit == nil {
			return errors.New("this agent cannot build from git")
		}
		built, id, err := e.BuildGit(ctx, o.AppEnv, *o.App.Git, commit.Commit)
		if err != nil {
			return err
		}
		now := e.now()
		_, err = state.UpdateApp(e.Layout.AppJSON(o.AppEnv), func(a *state.App) error {
			if a.Git == nil || a.Git.Requested == nil || (a.Git.Requested.Commit != commit.Commit && a.Git.Requested.Commit != built) {
				return nil // a newer push came meanwhile: the next plan builds it
			}
			a.Git.Built = &state.GitCommit{Commit: built, Delivery: a.Git.Requested.Delivery, Date: now, Version: id}
			if b := a.Backoff; b != nil && b.Step == plan.GitBuild {
				a.Backoff = nil
			}
			if a.CurrentVersion == id && a.Deployment == nil {
				e.logf(o.AppEnv, "commit %s is version %s, already live", plan.Short(built), id)
				return nil
			}
			e.logf(o.AppEnv, "commit %s is version %s: deployment requested", plan.Short(built), id)
			a.Request(id, now, false)
			a.Deployment.By = "git " + plan.Short(built)
			if d := a.Git.Requested.Delivery; d != "" {
				a.Deployment.By += " (delivery " + d + ")"
			}
			return nil
		})
		return err
	}
}
