package rollforward

import (
	"context"
	"errors"

	"github.com/jecloud/jecloud/internal/state"
)

// planGit plans the build of a commit the webhook accepted and that is not
// built yet (app.json git.requested).
func (e *Engine) planGit(o *observed) (Step, bool) {
	c := o.app.Git.Pending()
	if c == nil {
		return Step{}, false
	}
	g := *o.app.Git
	commit := *c
	reason := "fetch and bundle commit " + short(commit.Commit) + " of " + g.Branch + " pushed to " + g.Repository
	if commit.Delivery != "" {
		reason += " (delivery " + commit.Delivery + ")"
	}
	return Step{AppEnv: o.ae, Name: "git:build", Reason: reason, apply: func(ctx context.Context) error {
		if e.BuildGit == nil {
			return errors.New("this agent cannot build from git")
		}
		id, err := e.BuildGit(ctx, o.ae, g, commit.Commit)
		if err != nil {
			return err
		}
		now := e.now()
		_, err = state.UpdateApp(e.Layout.AppJSON(o.ae), func(a *state.App) error {
			if a.Git == nil || a.Git.Requested == nil || a.Git.Requested.Commit != commit.Commit {
				return nil // a newer push came meanwhile: the next plan builds it
			}
			a.Git.Built = &state.GitCommit{Commit: commit.Commit, Delivery: commit.Delivery, Date: now, Version: id}
			if b := a.Backoff; b != nil && b.Step == "git:build" {
				a.Backoff = nil
			}
			if a.CurrentVersion == id && a.Deployment == nil {
				e.logf(o.ae, "commit %s is version %s, already live", short(commit.Commit), id)
				return nil
			}
			e.logf(o.ae, "commit %s is version %s: deployment requested", short(commit.Commit), id)
			a.Request(id, now, false)
			return nil
		})
		return err
	}}, true
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
