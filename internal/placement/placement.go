// Package placement decides which Procfile process types run on which
// servers of an environment. A server has one role ("web" unless said
// otherwise); jecloud.toml's [roles] table names, for each other role, the
// process types its servers run ([roles] worker = ["worker", "clock"]).
// Types no role names run on the web servers. A role that has no server in
// the environment leaves its types on the web servers, so that nothing
// stops because a server is missing. See docs/jepush.md.
//
// jepush (client) and the agent's node hook (server) both use it: jepush
// to tell each server its role and the roles the environment has, the hook
// to give the types placed elsewhere 0 instances.
package placement

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Web is the default role, and where types of roles without servers run.
const Web = "web"

// CheckRole checks a role's name: 1 to 30 of a-z, 0-9 and '-', starting
// with a letter. A plain loop, as in package names: a regular expression
// would link regexp and its Unicode tables, whose initialisation every idle
// tick would pay (docs/benchmarks.md).
func CheckRole(name string) error {
	ok := len(name) >= 1 && len(name) <= 30 && name[0] >= 'a' && name[0] <= 'z'
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
	}
	if !ok {
		return fmt.Errorf("role %q: use 1 to 30 of a-z, 0-9 and '-', starting with a letter (e.g. \"worker\")", name)
	}
	return nil
}

// Map gives each process type named in [roles] its role; a type it does
// not name runs on web servers.
type Map map[string]string

// Parse checks [roles] (role -> process types) as read from file and
// returns the type -> role map. types are the Procfile's process types, or
// nil when they are not known (the client reads jecloud.toml without the
// Procfile of the release).
func Parse(file string, roles map[string][]string, types []string) (Map, error) {
	m := Map{}
	names := make([]string, 0, len(roles))
	for r := range roles {
		names = append(names, r)
	}
	sort.Strings(names)
	for _, r := range names {
		if err := CheckRole(r); err != nil {
			return nil, fmt.Errorf("%s: [roles] %w", file, err)
		}
		for _, t := range roles[r] {
			if other, ok := m[t]; ok && other != r {
				return nil, fmt.Errorf("%s: [roles] process type %q is in both %s and %s: a type runs on the servers of one role; keep it in one list", file, t, other, r)
			}
			if types != nil && !slices.Contains(types, t) {
				return nil, fmt.Errorf("%s: [roles] %s names %q, which is not a process type of the Procfile (%s): remove it or add it to the Procfile",
					file, r, t, strings.Join(types, ", "))
			}
			m[t] = r
		}
	}
	return m, nil
}

// RoleOf returns the role whose servers run type typ.
func (m Map) RoleOf(typ string) string {
	if r, ok := m[typ]; ok {
		return r
	}
	return Web
}

// Roles returns the roles the map names, sorted, web included.
func (m Map) Roles() []string {
	out := []string{Web}
	for _, r := range m {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	sort.Strings(out[1:])
	return out
}

// Server is where one server stands in its environment: its own role and
// the roles that have servers there. It is kept in the server's app.json
// ("placement"); jepush sets it at each push.
type Server struct {
	// Role is this server's role ("" is web).
	Role string `json:"role,omitempty"`
	// Roles are the roles that have at least one server in the
	// environment (empty: this server's role only).
	Roles []string `json:"roles,omitempty"`
}

// RoleOrWeb returns the server's role, web when it has none.
func (s *Server) RoleOrWeb() string {
	if s == nil || s.Role == "" {
		return Web
	}
	return s.Role
}

// Check checks the names in s.
func (s *Server) Check() error {
	if s == nil {
		return nil
	}
	if s.Role != "" {
		if err := CheckRole(s.Role); err != nil {
			return err
		}
	}
	for _, r := range s.Roles {
		if err := CheckRole(r); err != nil {
			return err
		}
	}
	return nil
}

// has reports whether the environment has a server of role r.
func (s *Server) has(r string) bool {
	if r == s.RoleOrWeb() {
		return true
	}
	return s != nil && slices.Contains(s.Roles, r)
}

// Runs reports whether a server placed at s runs process type typ: the
// servers of the type's role do; when that role has no server, the web
// servers do. A nil s (a server never told its placement) runs every type.
func (m Map) Runs(s *Server, typ string) bool {
	if s == nil {
		return true
	}
	r := m.RoleOf(typ)
	if s.has(r) {
		return r == s.RoleOrWeb()
	}
	return s.RoleOrWeb() == Web
}

// Counts returns how many instances of each of types run on a server
// placed at s, given each type's count where it runs (count).
func (m Map) Counts(s *Server, types []string, count func(typ string) int) map[string]int {
	out := make(map[string]int, len(types))
	for _, t := range types {
		if m.Runs(s, t) {
			out[t] = count(t)
		} else {
			out[t] = 0
		}
	}
	return out
}

// Homeless returns the roles of m that have no server among present, sorted:
// their types run on the web servers.
func (m Map) Homeless(present []string) []string {
	var out []string
	for _, r := range m.Roles() {
		if r != Web && !slices.Contains(present, r) {
			out = append(out, r)
		}
	}
	return out
}

// TypesOf returns the process types m places on role r, sorted.
func (m Map) TypesOf(r string) []string {
	var out []string
	for t, tr := range m {
		if tr == r {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// Same reports whether two placements put the same types on a server for
// any [roles]: nil (never placed) is a web server in an environment of web
// servers only.
func Same(a, b *Server) bool {
	norm := func(s *Server) (string, []string) {
		role := s.RoleOrWeb()
		var roles []string
		if s != nil {
			roles = slices.Clone(s.Roles)
		}
		if !slices.Contains(roles, role) {
			roles = append(roles, role)
		}
		slices.Sort(roles)
		return role, slices.Compact(roles)
	}
	ra, la := norm(a)
	rb, lb := norm(b)
	return ra == rb && slices.Equal(la, lb)
}
