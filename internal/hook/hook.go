// Package hook is the one protocol through which the agent calls service
// hooks, built-in Go ones and users' executables alike (see docs/hooks.md):
// argv[1] is the phase, JECLOUD_* variables and one JSON object on stdin
// carry the facts, stdout may return one JSON object, stderr goes to the
// log, and exit status 0 is success.
package hook

import (
	"context"
	"fmt"
	"io"

	"github.com/jecloud/jecloud/internal/placement"
)

// Phases of a deployment, in order.
const (
	Install  = "install"  // prerequisites (runtimes, OS packages)
	Prepare  = "prepare"  // before the switch; a failure leaves current untouched
	Deployed = "deployed" // after the switch: start or restart the app
	Cleanup  = "cleanup"  // a release is being removed
)

// Request is what a hook is told; it arrives as JSON on stdin.
type Request struct {
	Phase      string `json:"phase"`
	App        string `json:"app"`
	Env        string `json:"env"`
	Version    string `json:"version"`
	ReleaseDir string `json:"release_dir"`
	Root       string `json:"root"`
	// PreviousVersion is the version live before this deployment, if any.
	PreviousVersion string `json:"previous_version,omitempty"`
	// Vars are environment variables returned by the hooks that ran before
	// this one in this deployment (for example REDIS_URL), for the app.
	Vars map[string]string `json:"vars,omitempty"`
	// Scale is the number of instances per process type set with
	// `ps:scale` (app.json "scale"); it overrides the release's own.
	Scale map[string]int `json:"scale,omitempty"`
	// Placement is this server's role and the roles its environment has
	// (app.json "placement"); nil: every process type runs here.
	Placement *placement.Server `json:"placement,omitempty"`
}

// Response is what a hook may print on stdout as one JSON object.
type Response struct {
	// Vars are environment variables to give the app and later hooks.
	Vars map[string]string `json:"vars,omitempty"`
	// Message explains a failure (or says what was done).
	Message string `json:"message,omitempty"`
}

// Hook is one hook, built-in or executable.
type Hook interface {
	Name() string
	// Run carries out req.Phase; it writes its progress to log. A hook
	// ignores the phases it has no business with and returns no error.
	Run(ctx context.Context, req Request, log io.Writer) (Response, error)
}

// Error is a failed hook: Reason is the hook's own message.
type Error struct {
	Hook, Phase, Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s hook %s failed: %s", e.Phase, e.Hook, e.Reason)
}
