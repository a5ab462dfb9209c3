package plan

import (
	"fmt"

	"github.com/jecloud/jecloud/internal/state"
)

// planDeployment returns the next step of the pending deployment, or the
// request that a hand edit of current_version amounts to.
func planDeployment(o *Env) (Step, bool) {
	d := o.App.Deployment
	if d == nil {
		if o.App.CurrentVersion != "" && o.App.CurrentVersion != o.Live {
			return Step{AppEnv: o.AppEnv, Name: Request, Env: o,
				Reason: fmt.Sprintf("current_version is %s but versions/current points at %q (a hand edit?): deploying %s",
					o.App.CurrentVersion, o.Live, o.App.CurrentVersion)}, true
		}
		return Step{}, false
	}
	st := d.State
	if st == "" {
		st = state.StateRequested
	}
	dir, _ := o.Has(d.Version)
	// The state says where to resume; what is on disk can overrule it
	// (a hand edit, or a release removed by hand).
	switch st {
	case state.StateInstalling, state.StatePreparing, state.StateReleasing, state.StateSwitching:
		if !dir {
			st = state.StateRequested
		}
	case state.StateStarting:
		if o.Live != d.Version {
			st = state.StateRequested
		}
	}
	v := d.Version
	var reason string
	switch st {
	case state.StateRequested:
		reason = "deployment of " + v + " requested"
	case state.StateVerifying:
		reason = "check " + v + ".tar.zst against its ID"
	case state.StateExtracting:
		reason = "unpack " + v + " into versions/" + v
	case state.StateInstalling:
		reason = "install prerequisites of " + v
	case state.StatePreparing:
		reason = "prepare " + v + " before the switch"
	case state.StateReleasing:
		reason = "run the release command of " + v + " before the switch"
	case state.StateSwitching:
		reason = "switch versions/current to " + v
	case state.StateStarting:
		reason = "start " + v
	case state.StateRollingBack:
		reason = "starting " + v + " failed: going back to " + d.PreviousVersion
	}
	return Step{AppEnv: o.AppEnv, Name: DeployStep(st), Reason: reason, Env: o, Deployment: d}, true
}
