package rollforward

import (
	"context"
	"errors"

	"github.com/jecloud/jecloud/internal/plan"
	"github.com/jecloud/jecloud/internal/state"
)

// buildGit builds a commit the webhook accepted (app.json git.requested)
// and requests its deployment.
func (e *Engine) buildGit(o *plan.Env, commit state.GitCommit) func(context.Context) error {
	return func(ctx context.Context) error {
		if e.BuildGit == nil {
			return errors.New("this agent cannot build from git")
		}
		id, err := e.BuildGit(ctx, o.AppEnv, *o.App.Git, commit.Commit)
		if err != nil {
			return err
		}
		now := e.now()
		_, err = state.UpdateApp(e.Layout.AppJSON(o.AppEnv), func(a *state.App) error {
			if a.Git == nil || a.Git.Requested == nil || a.Git.Requested.Commit != commit.Commit {
				return nil // a newer push came meanwhile: the next plan builds it
			}
			a.Git.Built = &state.GitCommit{Commit: commit.Commit, Delivery: commit.Delivery, Date: now, Version: id}
			if b := a.Backoff; b != nil && b.Step == plan.GitBuild {
				a.Backoff = nil
			}
			if a.CurrentVersion == id && a.Deployment == nil {
				e.logf(o.AppEnv, "commit %s is version %s, already live", plan.Short(commit.Commit), id)
				return nil
			}
			e.logf(o.AppEnv, "commit %s is version %s: deployment requested", plan.Short(commit.Commit), id)
			a.Request(id, now, false)
			return nil
		})
		return err
	}
}
