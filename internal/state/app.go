package state

import (
	"fmt"
	"time"

	"github.com/jecloud/jecloud/internal/names"
	"github.com/jecloud/jecloud/internal/placement"
)

// The steps of a deployment, in order; Deployment.State holds the one it is
// in, so that the next run resumes there. See docs/state.md.
const (
	StateRequested   = "requested"    // recorded; nothing done yet
	StateVerifying   = "verifying"    // hashing the bundle and checking every entry
	StateExtracting  = "extracting"   // unpacking into a temp dir, then renaming it into versions/ID/
	StateInstalling  = "installing"   // install hooks: prerequisites (runtimes, packages)
	StatePreparing   = "preparing"    // prepare hooks: before the switch (npm ci, ...)
	StateReleasing   = "releasing"    // the Procfile's release command (migrations), if it has one
	StateSwitching   = "switching"    // versions/current -> ID
	StateStarting    = "starting"     // deployed hooks: (re)start the app
	StateRollingBack = "rolling_back" // deployed hooks failed: current -> previous, restart it
)

// States lists the deployment states in order.
var States = []string{StateRequested, StateVerifying, StateExtracting, StateInstalling,
	StatePreparing, StateReleasing, StateSwitching, StateStarting, StateRollingBack}

// Caps on the lists kept in app.json.
const (
	MaxFailed   = 100
	MaxAborted  = 100
	MaxDeployed = 50
	MaxScale    = 64
)

// App is APP/ENV/app.json.
type App struct {
	CurrentVersion            string      `json:"current_version,omitempty"`
	Deployment                *Deployment `json:"deployment,omitempty"`
	AbortedDeploymentVersions []string    `json:"aborted_deployment_versions,omitempty"`
	RecentFailedDeployments   []Failure   `json:"recent_failed_deployments,omitempty"`
	DeployedVersions          []Deployed  `json:"deployed_versions,omitempty"`
	Backoff                   *Backoff    `json:"backoff,omitempty"`
	// Scale is the number of instances per process type, set with
	// `ps:scale` or by hand; it overrides jecloud.toml's [scale].
	Scale map[string]int `json:"scale,omitempty"`
	// Placement is this server's role in the environment and the roles
	// that have servers there (set by jepush at each push, or by hand);
	// with jecloud.toml's [roles] it decides which process types run here.
	// Absent: every type runs here.
	Placement *placement.Server `json:"placement,omitempty"`
	// Backups is the last backup of each service (`jeagent backup`).
	Backups map[string]*BackupRecord `json:"backups,omitempty"`
	// Git is set for an environment deployed from git pushes (webhook).
	Git *Git `json:"git,omitempty"`
	// Domains are the host names the front door (the proxy) routes to
	// this app environment's web process (`jepush domains:add`, or by
	// hand), with certificates from ACME. See docs/routing.md.
	Domains []string `json:"domains,omitempty"`
	// Maintenance makes the front door answer 503 with the maintenance
	// page instead of passing requests to the app (which keeps running).
	Maintenance bool `json:"maintenance,omitempty"`
	// Watch is the crash-loop watchdog on the release that last went
	// live, while its window lasts (jecloud.toml [watchdog]).
	Watch *Watch `json:"watch,omitempty"`
	// Destroy, once set (`jeagent destroy`), is the app environment being
	// removed: it is never routed, deployed or reported live again, and
	// the roll-forward removes its units, user, ports and releases (its
	// data too with Data), then this file last. See docs/agent.md.
	Destroy *Destroy `json:"destroy,omitempty"`
	Extra   Extra    `json:"-"`
}

// Destroy is a request to remove an app environment from the server.
type Destroy struct {
	RequestDate time.Time `json:"request_date,omitzero"`
	// Data removes the services' data (Redis, MongoDB) too; without it
	// they stay on the server for a later push to find.
	Data bool `json:"data,omitempty"`
	// By is who asked for it (USER@HOST, and the sudo user).
	By    string `json:"by,omitempty"`
	Extra Extra  `json:"-"`
}

func (d *Destroy) UnmarshalJSON(b []byte) error {
	type plain Destroy
	x, err := decodeKeep(b, (*plain)(d))
	d.Extra = x
	return err
}
func (d Destroy) MarshalJSON() ([]byte, error) {
	type plain Destroy
	return encodeKeep(plain(d), d.Extra)
}

// Watch is the crash-loop watchdog on a release that just went live: until
// Until, if its processes restart more than MaxRestarts times in all, the
// agent rolls back to Previous by itself.
type Watch struct {
	Version     string    `json:"version"`
	Previous    string    `json:"previous"`
	Since       time.Time `json:"since,omitzero"`
	Until       time.Time `json:"until,omitzero"`
	MaxRestarts int       `json:"max_restarts"`
	// Baseline is what systemd counted when it went live; Checked is
	// when the restarts were last counted, and Restarts how many more
	// there were then.
	Baseline int       `json:"baseline,omitempty"`
	Checked  time.Time `json:"checked,omitzero"`
	Restarts int       `json:"restarts,omitempty"`
	Extra    Extra     `json:"-"`
}

func (w *Watch) UnmarshalJSON(b []byte) error {
	type plain Watch
	x, err := decodeKeep(b, (*plain)(w))
	w.Extra = x
	return err
}
func (w Watch) MarshalJSON() ([]byte, error) { type plain Watch; return encodeKeep(plain(w), w.Extra) }

// BackupRecord is where a service's backups stand.
type BackupRecord struct {
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	Key         string    `json:"key,omitempty"` // the S3 object of the last success
	Size        int64     `json:"size,omitempty"`
	SHA256      string    `json:"sha256,omitempty"`
}

// Deployment is a requested version on its way to being live.
type Deployment struct {
	Version     string    `json:"version"`
	RequestDate time.Time `json:"request_date,omitzero"`
	StartDate   time.Time `json:"start_date,omitzero"`
	State       string    `json:"state,omitempty"`
	// PreviousVersion is what was live when the switch happened: where an
	// automatic rollback goes back to.
	PreviousVersion string `json:"previous_version,omitempty"`
	// Rollback marks a deployment asked for by `jeagent rollback`.
	Rollback bool `json:"rollback,omitempty"`
	// TarBytes is the size of the verified tar stream (for the disk check).
	TarBytes int64 `json:"tar_bytes,omitempty"`
	// FailReason is set while rolling back after a failed start.
	FailReason string `json:"fail_reason,omitempty"`
	// Types limits a restart (a deployment of the live version) to these
	// process types (`jeagent restart APP ENV TYPE`); empty: every type.
	Types []string `json:"types,omitempty"`
	// By says who asked for it: "alice@laptop" (jepush), "git COMMIT"
	// (a push to the followed branch), "global state" (an EC2 rollout).
	By    string `json:"by,omitempty"`
	Extra Extra  `json:"-"`
}

// Failure is one entry of recent_failed_deployments.
type Failure struct {
	Version     string    `json:"version"`
	RequestDate time.Time `json:"request_date,omitzero"`
	StartDate   time.Time `json:"start_date,omitzero"`
	FailDate    time.Time `json:"fail_date,omitzero"`
	State       string    `json:"state,omitempty"`
	Reason      string    `json:"reason"`
	By          string    `json:"by,omitempty"`
	Extra       Extra     `json:"-"`
}

// Deployed is one entry of deployed_versions: a version that went live.
type Deployed struct {
	Version string    `json:"version"`
	Date    time.Time `json:"date,omitzero"`
	By      string    `json:"by,omitempty"`
	Extra   Extra     `json:"-"`
}

// Backoff records a step that keeps failing for reasons that may pass (an
// I/O error, a hook that could not reach the network), so that the agent
// waits before trying again instead of hammering every minute.
type Backoff struct {
	Step      string    `json:"step"`
	Failures  int       `json:"failures"`
	LastError string    `json:"last_error"`
	LastDate  time.Time `json:"last_date,omitzero"`
	NextTry   time.Time `json:"next_try,omitzero"`
	Extra     Extra     `json:"-"`
}

func (a *App) UnmarshalJSON(b []byte) error {
	type plain App
	x, err := decodeKeep(b, (*plain)(a))
	a.Extra = x
	return err
}
func (a App) MarshalJSON() ([]byte, error) { type plain App; return encodeKeep(plain(a), a.Extra) }

func (d *Deployment) UnmarshalJSON(b []byte) error {
	type plain Deployment
	x, err := decodeKeep(b, (*plain)(d))
	d.Extra = x
	return err
}
func (d Deployment) MarshalJSON() ([]byte, error) {
	type plain Deployment
	return encodeKeep(plain(d), d.Extra)
}

func (f *Failure) UnmarshalJSON(b []byte) error {
	type plain Failure
	x, err := decodeKeep(b, (*plain)(f))
	f.Extra = x
	return err
}
func (f Failure) MarshalJSON() ([]byte, error) {
	type plain Failure
	return encodeKeep(plain(f), f.Extra)
}

func (d *Deployed) UnmarshalJSON(b []byte) error {
	type plain Deployed
	x, err := decodeKeep(b, (*plain)(d))
	d.Extra = x
	return err
}
func (d Deployed) MarshalJSON() ([]byte, error) {
	type plain Deployed
	return encodeKeep(plain(d), d.Extra)
}

func (k *Backoff) UnmarshalJSON(b []byte) error {
	type plain Backoff
	x, err := decodeKeep(b, (*plain)(k))
	k.Extra = x
	return err
}
func (k Backoff) MarshalJSON() ([]byte, error) {
	type plain Backoff
	return encodeKeep(plain(k), k.Extra)
}

// Now is the agent's clock for dates written to state: UTC, whole seconds.
func Now() time.Time { return time.Now().UTC().Truncate(time.Second) }

// Request records a deployment of version. A different version pending or
// running is moved to aborted_deployment_versions: the newest request wins.
// Asking again for the version already pending changes nothing.
func (a *App) Request(version string, now time.Time, rollback bool) {
	if d := a.Deployment; d != nil {
		if d.Version == version {
			return
		}
		a.AbortedDeploymentVersions = capTail(append(a.AbortedDeploymentVersions, d.Version), MaxAborted)
	}
	a.Deployment = &Deployment{Version: version, RequestDate: now, State: StateRequested, Rollback: rollback}
	a.Backoff = nil
}

// Fail ends the pending deployment with reason.
func (a *App) Fail(reason string, now time.Time) {
	d := a.Deployment
	if d == nil {
		return
	}
	a.RecentFailedDeployments = capTail(append(a.RecentFailedDeployments, Failure{
		Version: d.Version, RequestDate: d.RequestDate, StartDate: d.StartDate,
		FailDate: now, State: d.State, Reason: reason, By: d.By,
	}), MaxFailed)
	a.Deployment = nil
	a.Backoff = nil
}

// Succeed ends the pending deployment: its version is live.
func (a *App) Succeed(now time.Time) {
	d := a.Deployment
	if d == nil {
		return
	}
	a.CurrentVersion = d.Version
	a.DeployedVersions = capTail(append(a.DeployedVersions, Deployed{Version: d.Version, Date: now, By: d.By}), MaxDeployed)
	a.Deployment = nil
	a.Backoff = nil
}

// LastGood returns the version that was live before the current one, or "".
func (a *App) LastGood() string {
	for i := len(a.DeployedVersions) - 1; i >= 0; i-- {
		if v := a.DeployedVersions[i].Version; v != a.CurrentVersion {
			return v
		}
	}
	return ""
}

// WasLive reports whether version went live here before.
func (a *App) WasLive(version string) bool {
	for _, d := range a.DeployedVersions {
		if d.Version == version {
			return true
		}
	}
	return a.CurrentVersion == version
}

// Failed reports whether version's last deployment failed (and it never went live after).
func (a *App) Failed(version string) bool {
	for i := len(a.RecentFailedDeployments) - 1; i >= 0; i-- {
		if a.RecentFailedDeployments[i].Version == version {
			for _, d := range a.DeployedVersions {
				if d.Version == version && d.Date.After(a.RecentFailedDeployments[i].FailDate) {
					return false
				}
			}
			return true
		}
	}
	return false
}

// Validate checks the values a person may have typed; it returns the key
// path and value at fault.
func (a *App) Validate() error {
	if a.CurrentVersion != "" {
		if err := names.CheckVersion(a.CurrentVersion); err != nil {
			return &ValueError{Key: "current_version", Value: a.CurrentVersion, Err: err}
		}
	}
	for typ, n := range a.Scale {
		if n < 0 || n > MaxScale {
			return &ValueError{Key: "scale." + typ, Value: fmt.Sprint(n), Err: fmt.Errorf("give 0 to %d instances", MaxScale)}
		}
	}
	if g := a.Git; g != nil {
		for key, c := range map[string]*GitCommit{"git.requested.commit": g.Requested, "git.built.commit": g.Built} {
			if c != nil && !IsCommit(c.Commit) {
				return &ValueError{Key: key, Value: c.Commit, Err: fmt.Errorf("not a full commit ID (40 or 64 hex digits): remove the key")}
			}
		}
	}
	if err := a.Placement.Check(); err != nil {
		return &ValueError{Key: "placement", Value: fmt.Sprintf("%+v", *a.Placement), Err: err}
	}
	if d := a.Deployment; d != nil {
		if err := names.CheckVersion(d.Version); err != nil {
			return &ValueError{Key: "deployment.version", Value: d.Version, Err: err}
		}
		if d.State != "" && !knownState(d.State) {
			return &ValueError{Key: "deployment.state", Value: d.State,
				Err: fmt.Errorf("unknown state: use one of %v, or remove the key to start over", States)}
		}
	}
	return nil
}

func knownState(s string) bool {
	for _, k := range States {
		if k == s {
			return true
		}
	}
	return false
}

func capTail[T any](s []T, n int) []T {
	if len(s) > n {
		return append([]T(nil), s[len(s)-n:]...)
	}
	return s
}
