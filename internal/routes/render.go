package routes

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jecloud/jecloud/internal/names"
	"github.com/jecloud/jecloud/internal/state"
)

// site is one app environment's route: its host names and handler.
type site struct {
	env   Env
	hosts []string
}

// name is the site's name in both configurations: APP_ENV (names.Check
// allows lowercase letters, digits and "-" in each, so "_" joins them
// unambiguously).
func (s site) name() string { return s.env.AppEnv.App + "_" + s.env.AppEnv.Env }

// direct reports whether HAProxy sends the site's requests straight to
// its web instances (else Caddy answers them: maintenance, a static site,
// no web process).
func (s site) direct() bool { return !s.env.Maintenance && len(s.env.Upstreams.Web) > 0 }

// DefaultName is ae's name under the base domain.
func DefaultName(ae state.AppEnv, base string) string {
	if base == "" {
		return ""
	}
	return ae.App + "-" + ae.Env + "." + strings.TrimPrefix(base, ".")
}

// layout is what the front door routes, whichever program serves it.
type layout struct {
	sites []site // in name order
	def   *site  // served on the bare address, if any
	// tlsHosts are the host names certificates are asked for, sorted.
	tlsHosts []string
	notes    []string
}

// plan decides the routes: each app environment's host names (a domain
// wins over a default name; a host claimed twice goes to the first app
// environment in name order) and the default app.
func plan(in Input) layout {
	var out layout
	out.notes = slices.Clone(in.Notes)
	owner := map[string]state.AppEnv{}
	envs := slices.Clone(in.Envs)
	slices.SortFunc(envs, func(a, b Env) int { return strings.Compare(a.AppEnv.String(), b.AppEnv.String()) })
	claim := func(ae state.AppEnv, h string) bool {
		if o, ok := owner[h]; ok && o != ae {
			out.notes = append(out.notes, fmt.Sprintf("%s: host %s is %s's: not routed here (remove it from one of them)", ae, h, o))
			return false
		}
		owner[h] = ae
		return true
	}
	hosts := map[state.AppEnv][]string{}
	for _, e := range envs {
		if !e.Live && !e.Git {
			continue
		}
		for _, h := range e.Domains {
			if err := names.CheckHost(h); err != nil {
				// A hand edit: the others are routed, and the log says why not this one.
				out.notes = append(out.notes, fmt.Sprintf("%s: app.json domains: %v", e.AppEnv, err))
				continue
			}
			if claim(e.AppEnv, h) && !slices.Contains(hosts[e.AppEnv], h) {
				hosts[e.AppEnv] = append(hosts[e.AppEnv], h)
			}
		}
	}
	for _, e := range envs {
		if !e.Live && !e.Git {
			continue // a git environment is routed before its first push: the webhook
		}
		if h := DefaultName(e.AppEnv, in.Proxy.BaseDomain); h != "" && claim(e.AppEnv, h) && !slices.Contains(hosts[e.AppEnv], h) {
			hosts[e.AppEnv] = append(hosts[e.AppEnv], h)
		}
		out.sites = append(out.sites, site{env: e, hosts: hosts[e.AppEnv]})
		out.tlsHosts = append(out.tlsHosts, hosts[e.AppEnv]...)
	}
	slices.Sort(out.tlsHosts)
	def, note := defaultSite(in.Proxy.DefaultApp, out.sites)
	if note != "" {
		out.notes = append(out.notes, note)
	}
	out.def = def
	return out
}

// Render returns the front door's whole configuration, and notes on what
// it could not route (a host claimed twice: the first app environment in
// name order keeps it).
func Render(in Input) (Config, []string) {
	lay := plan(in)
	cfg := Config{Caddy: renderCaddy(in, lay), HAProxy: renderHAProxy(in, &lay)}
	return cfg, lay.notes
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// port is addr's port, or def when addr is empty.
func port(addr string, def int) int {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		if n, err := strconv.Atoi(addr[i+1:]); err == nil {
			return n
		}
	}
	return def
}
