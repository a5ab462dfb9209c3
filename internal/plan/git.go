package plan

// planGit plans the build of a commit the webhook accepted and that is not
// built yet (app.json git.requested).
func planGit(o *Env) (Step, bool) {
	c := o.App.Git.Pending()
	if c == nil {
		return Step{}, false
	}
	g := o.App.Git
	reason := "fetch and bundle commit " + Short(c.Commit) + " of " + g.Branch + " pushed to " + g.Repository
	if c.Delivery != "" {
		reason += " (delivery " + c.Delivery + ")"
	}
	return Step{AppEnv: o.AppEnv, Name: GitBuild, Reason: reason, Env: o, Commit: *c}, true
}

// Short is a commit's first 12 hex digits, as logs show it.
func Short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
