// Package hook is the one protocol through which the agent calls service
// hooks, built-in Go ones and users' executables alike (see docs/hooks.md):
// argv[1] is the phase, JECLOUD_* variables and one JSON object on stdin
// carry the facts, stdout may return one JSON object, stderr goes to the
// log, and exit status 0 is success.
package hook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jecloud/jecloud/internal/placement"
	"github.com/jecloud/jecloud/internal/state"
)

// Phases of a deployment, in order.
const (
	Install  = "install"  // prerequisites (runtimes, OS packages)
	Prepare  = "prepare"  // before the switch; a failure leaves current untouched
	Deployed = "deployed" // after the switch: start or restart the app
	Cleanup  = "cleanup"  // a release is being removed
	// Destroy is not a deployment's phase: the app environment is being
	// removed from the server (`jeagent destroy`). A hook removes what it
	// set up for it (units, users, ports, configuration), and its data
	// only when Request.Data is set. Hooks run in reverse order for it,
	// and it must be idempotent: a run stopped half way is run again.
	Destroy = "destroy"
)

// Request is what a hook is told; it arrives as JSON on stdin.
type Request struct {
	Phase      string `json:"phase"`
	App        string `json:"app"`
	Env        string `json:"env"`
	Version    string `json:"version"`
	ReleaseDir string `json:"release_dir"`
	Root       string `json:"root"`
	// AppDir is the app environment's directory, ROOT/APP/ENV: its
	// app.json, config.env, services.env, ports.json and services' data.
	AppDir string `json:"app_dir"`
	// PreviousVersion is the version live before this deployment, if any.
	PreviousVersion string `json:"previous_version,omitempty"`
	// Vars are environment variables returned by the hooks that ran before
	// this one in this deployment (for example REDIS_URL), for the app.
	Vars map[string]string `json:"vars,omitempty"`
	// Types, in the deployed phase of a restart of the live version,
	// are the only process types to restart (`jeagent restart APP ENV
	// TYPE`); the others are left as they run. Empty: every type.
	Types []string `json:"types,omitempty"`
	// Scale is the number of instances per process type set with
	// `ps:scale` (app.json "scale"); it overrides the release's own.
	Scale map[string]int `json:"scale,omitempty"`
	// Placement is this server's role and the roles its environment has
	// (app.json "placement"); nil: every process type runs here.
	Placement *placement.Server `json:"placement,omitempty"`
	// Server is sys/server.json as the caller read it (ReadServer): each
	// of its keys with its value as written, where a hook finds its own
	// settings ("node", "mongodb", "backups", ...). Nil: no server.json.
	Server map[string]json.RawMessage `json:"server,omitempty"`
	// ServerError says why server.json could not be read (it does not
	// parse: PATH:LINE:COL and what is wrong); Server is nil then, and
	// Settings fails with this reason.
	ServerError string `json:"server_error,omitempty"`
	// Data, in the destroy phase, asks the hook to remove the app
	// environment's data too (`jeagent destroy --data`); without it the
	// data stays for a later deployment to find.
	Data bool `json:"data,omitempty"`
}

// ServerJSON is the path of server.json under req.Root.
func (req Request) ServerJSON() string { return state.Layout{Root: req.Root}.ServerJSON() }

// ReadServer reads server.json under req.Root, once for every hook of a
// phase, into req.Server, or the reason it cannot into req.ServerError. A
// server.json that does not parse fails only the hooks that need their
// settings, as a hook that read the file itself would fail.
func (req *Request) ReadServer() {
	req.Server, req.ServerError = nil, ""
	var m map[string]json.RawMessage
	err := state.Read(req.ServerJSON(), &m)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		req.ServerError = err.Error()
	default:
		req.Server = m
	}
}

// Settings decodes the value of server.json's key into v. It leaves v as
// it is when server.json or the key is missing. A key matches whatever its
// case, as encoding/json matches a struct field; server.json with the key
// in two cases ("node" and "Node") is refused, naming them: which one a
// hook got would otherwise depend on the order of a Go map.
func (req Request) Settings(key string, v any) error {
	if req.ServerError != "" {
		return errors.New(req.ServerError)
	}
	var raw json.RawMessage
	var found []string
	for k, r := range req.Server {
		if strings.EqualFold(k, key) {
			raw = r
			found = append(found, strconv.Quote(k))
		}
	}
	if len(found) > 1 {
		sort.Strings(found)
		return fmt.Errorf("%s: keys %s are one key (keys match whatever their case): keep one of them", req.ServerJSON(), strings.Join(found, " and "))
	}
	if len(found) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: key %q: %w", req.ServerJSON(), key, err)
	}
	return nil
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
