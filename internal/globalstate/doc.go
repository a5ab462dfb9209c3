// Package globalstate keeps JeCloud's global state in S3: one private
// bucket per account and region, and in it one JSON document per app
// environment (envs/APP/ENV.json) listing its servers, the version
// requested and the history of requests, and what each server last
// observed. People may read and edit the documents; every program updates
// them with a compare-and-swap (S3 conditional writes: If-None-Match on
// creation, If-Match on the ETag after), retried on conflict, so that two
// laptops deploying at once lose no update. See docs/globalstate.md.
package globalstate

import (
	"fmt"
	"slices"
	"time"

	"github.com/jecloud/jecloud/internal/names"
	"github.com/jecloud/jecloud/internal/placement"
	"github.com/jecloud/jecloud/internal/state"
)

// Env is the document of one app environment.
type Env struct {
	App string `json:"app"`
	Env string `json:"env"`
	// Requested is the version the environment's servers are to run.
	Requested *Request `json:"requested,omitempty"`
	// History lists the last 100 requests, oldest first.
	History []Request `json:"history,omitempty"`
	// Servers are the environment's servers, in the order they were added.
	Servers []Server `json:"servers,omitempty"`
	// DesiredServers is how many servers `jepush scale` asked for (0: as
	// many as jecloud.toml says).
	DesiredServers int `json:"desired_servers,omitempty"`
	// DesiredRoles is how many servers of each role other than web
	// `jepush scale --role ROLE N` asked for ({"worker": 2}).
	DesiredRoles map[string]int `json:"desired_roles,omitempty"`
	// MaxParallel is how many servers may switch to a new version at the
	// same time (default 1), when the servers follow the global state.
	MaxParallel int `json:"max_parallel,omitempty"`
	// Routing is the front door's settings for every server of the
	// environment (`jepush domains:add`, `jepush maintenance:on`); nil:
	// each server's app.json keeps its own.
	Routing *Routing    `json:"routing,omitempty"`
	Extra   state.Extra `json:"-"`
}

// Routing is what the front door of each server of the environment is to
// do for it (docs/routing.md): the servers that follow the document add
// these domains to their app.json, and set its maintenance flag when the
// document sets one.
type Routing struct {
	Domains     []string    `json:"domains,omitempty"`
	Maintenance *bool       `json:"maintenance,omitempty"`
	Extra       state.Extra `json:"-"`
}

// Request is a version asked for, when and by whom.
type Request struct {
	Version string      `json:"version"`
	Date    time.Time   `json:"date"`
	By      string      `json:"by,omitempty"` // user@host of the laptop or CI job
	Extra   state.Extra `json:"-"`
}

// Server is one server of an app environment.
type Server struct {
	Name       string `json:"name"`           // unique in the environment
	Host       string `json:"host,omitempty"` // what SSH connects to
	Role       string `json:"role,omitempty"` // "web" (default), "worker": which process types it runs
	User       string `json:"user,omitempty"` // SSH login ("": the ssh config's)
	InstanceID string `json:"instance_id,omitempty"`
	// HostKeys are the server's SSH host keys (authorized_keys lines), as
	// its console showed them at its first boot.
	HostKeys []string `json:"host_keys,omitempty"`
	// Bootstrap is set while jepush makes the server, and says how far it got.
	Bootstrap *Bootstrap `json:"bootstrap,omitempty"`
	// Observation is the key of the object the server reports to (which
	// its role lets it write, and nothing else); "" is ObservationKey of
	// its name. Written by jepush.
	Observation string `json:"observation,omitempty"`
	// Observed is what the server last reported: from its observation
	// object when Store.Observe read it, else what an older agent wrote
	// into the document.
	Observed *Observed   `json:"observed,omitempty"`
	Extra    state.Extra `json:"-"`
}

// Bootstrap records the making of a server, so that an interrupted one
// resumes instead of starting over.
type Bootstrap struct {
	// Step is "launching" (ClientToken chosen), "booting" (InstanceID
	// known), "installing" (host keys known, jeagent on its way), "ready".
	Step        string    `json:"step"`
	ClientToken string    `json:"client_token"`
	Started     time.Time `json:"started"`
	Error       string    `json:"error,omitempty"`
}

// Ready reports whether the server can be deployed to: added by hand, or
// bootstrapped to the end.
func (s *Server) Ready() bool { return s.Bootstrap == nil || s.Bootstrap.Step == "ready" }

// RoleOrWeb returns the server's role, web when it has none.
func (s *Server) RoleOrWeb() string {
	if s.Role == "" {
		return placement.Web
	}
	return s.Role
}

// ReadyRoles returns the roles that have a ready server, sorted: the
// process types of other roles run on the web servers. A role scaled to 0
// (desired_roles) has none, even while its servers are being ended.
func (e *Env) ReadyRoles() []string {
	var out []string
	for i := range e.Servers {
		s := &e.Servers[i]
		n, set := e.DesiredRoles[s.RoleOrWeb()]
		if s.Ready() && s.Host != "" && !slices.Contains(out, s.RoleOrWeb()) && (!set || n > 0 || s.RoleOrWeb() == placement.Web) {
			out = append(out, s.RoleOrWeb())
		}
	}
	slices.Sort(out)
	return out
}

// ObservationOf returns the key server s reports to.
func (e *Env) ObservationOf(s *Server) string {
	if s.Observation != "" {
		return s.Observation
	}
	return ObservationKey(e.App, e.Env, s.Name)
}

// HasInstances reports whether a server of the document is an EC2 instance.
func (e *Env) HasInstances() bool {
	for i := range e.Servers {
		if e.Servers[i].InstanceID != "" {
			return true
		}
	}
	return false
}

// Roles returns the roles that have servers in the document, sorted.
func (e *Env) Roles() []string {
	var out []string
	for i := range e.Servers {
		if r := e.Servers[i].RoleOrWeb(); !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// Observed is what a server's agent last reported.
type Observed struct {
	CurrentVersion string `json:"current_version,omitempty"`
	Deploying      string `json:"deploying,omitempty"`
	Error          string `json:"error,omitempty"`
	// For is the version the document requested when the server wrote
	// this: an Error is about it ("" from older agents).
	For   string      `json:"for,omitempty"`
	Date  time.Time   `json:"date"`
	Extra state.Extra `json:"-"`
}

// historyCap is how many requests History keeps.
const historyCap = 100

// Request records a request for version: Requested, and the end of History.
func (e *Env) Request(version, by string, now time.Time) {
	r := Request{Version: version, Date: now, By: by}
	e.Requested = &r
	e.History = append(e.History, r)
	if n := len(e.History); n > historyCap {
		e.History = append([]Request(nil), e.History[n-historyCap:]...)
	}
}

// Server returns the server named name, or nil.
func (e *Env) Server(name string) *Server {
	for i := range e.Servers {
		if e.Servers[i].Name == name {
			return &e.Servers[i]
		}
	}
	return nil
}

// Validate checks the values people may get wrong when they edit by hand.
func (e *Env) Validate() error {
	if e.Requested != nil {
		if err := names.CheckVersion(e.Requested.Version); err != nil {
			return &state.ValueError{Key: "requested.version", Value: e.Requested.Version, Err: err}
		}
	}
	seen := map[string]bool{}
	for _, s := range e.Servers {
		if s.Name == "" {
			return &state.ValueError{Key: "servers[].name", Value: "", Err: fmt.Errorf("every server needs a name")}
		}
		if seen[s.Name] {
			return &state.ValueError{Key: "servers[].name", Value: s.Name, Err: fmt.Errorf("two servers have this name: names are unique in an environment")}
		}
		seen[s.Name] = true
		if s.Role != "" {
			if err := placement.CheckRole(s.Role); err != nil {
				return &state.ValueError{Key: "servers[].role", Value: s.Role, Err: err}
			}
		}
	}
	for r, n := range e.DesiredRoles {
		if err := placement.CheckRole(r); err != nil {
			return &state.ValueError{Key: "desired_roles", Value: r, Err: err}
		}
		if n < 0 || n > 100 {
			return &state.ValueError{Key: "desired_roles." + r, Value: fmt.Sprint(n), Err: fmt.Errorf("give 0 to 100 servers")}
		}
	}
	return nil
}

func (e *Env) UnmarshalJSON(b []byte) error {
	type plain Env
	x, err := state.DecodeKeep(b, (*plain)(e))
	e.Extra = x
	return err
}
func (e Env) MarshalJSON() ([]byte, error) {
	type plain Env
	return state.EncodeKeep(plain(e), e.Extra)
}

func (r *Routing) UnmarshalJSON(b []byte) error {
	type plain Routing
	x, err := state.DecodeKeep(b, (*plain)(r))
	r.Extra = x
	return err
}
func (r Routing) MarshalJSON() ([]byte, error) {
	type plain Routing
	return state.EncodeKeep(plain(r), r.Extra)
}

func (r *Request) UnmarshalJSON(b []byte) error {
	type plain Request
	x, err := state.DecodeKeep(b, (*plain)(r))
	r.Extra = x
	return err
}
func (r Request) MarshalJSON() ([]byte, error) {
	type plain Request
	return state.EncodeKeep(plain(r), r.Extra)
}

func (s *Server) UnmarshalJSON(b []byte) error {
	type plain Server
	x, err := state.DecodeKeep(b, (*plain)(s))
	s.Extra = x
	return err
}
func (s Server) MarshalJSON() ([]byte, error) {
	type plain Server
	return state.EncodeKeep(plain(s), s.Extra)
}

func (o *Observed) UnmarshalJSON(b []byte) error {
	type plain Observed
	x, err := state.DecodeKeep(b, (*plain)(o))
	o.Extra = x
	return err
}
func (o Observed) MarshalJSON() ([]byte, error) {
	type plain Observed
	return state.EncodeKeep(plain(o), o.Extra)
}

// ObservationKey is where a server reports what it runs: one object per
// server, envs/APP/ENV/observed/ID.json, which only that server may write.
// ID is the server's aws:userid (role-id:instance-id) for servers jepush
// made, whose role allows exactly that key; its name for servers added by
// hand.
func ObservationKey(app, env, id string) string {
	return "envs/" + app + "/" + env + "/observed/" + id + ".json"
}
