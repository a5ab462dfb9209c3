// Package routes renders the front door's configuration (Caddy's JSON)
// from the state tree: which host names go to which app environment's web
// instances, the default app on the server's bare address, maintenance
// pages, and where certificates come from. It only reads, and links no
// network code, so that the roll-forward's planner (and jeagent-tick) can
// tell whether the running proxy is behind the state. Package proxy loads
// what it renders. See docs/routing.md.
package routes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/names"
	"github.com/jecloud/jecloud/internal/ports"
	"github.com/jecloud/jecloud/internal/state"
)

// Where the proxy runs (jecloud-proxy.service, docs/routing.md).
const (
	// AdminSocket is the proxy's admin API (systemd's RuntimeDirectory of
	// the unit, 0700).
	AdminSocket = "/run/jecloud-proxy/admin.sock"
	// StorageDir is where the proxy keeps certificates and ACME accounts
	// (the unit's StateDirectory).
	StorageDir = "/var/lib/jecloud-proxy/data"
	// LetsEncrypt is the default ACME directory.
	LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"
	// MaintenancePage is the page a release may carry at its root; the
	// front door answers 503 with it in maintenance mode.
	MaintenancePage = "maintenance.html"
	// maxPage caps a maintenance page rendered into the configuration.
	maxPage = 512 << 10
)

// Dir is the proxy's folder in the state tree: `jeagent init` makes it
// when it installs the proxy; the roll-forward keeps the proxy in step
// only where it exists.
func Dir(l state.Layout) string { return filepath.Join(l.Sys(), "proxy") }

// AppliedFile is the configuration the proxy last accepted, for people to
// read and for the planner to compare with.
func AppliedFile(l state.Layout) string { return filepath.Join(Dir(l), "caddy.json") }

// Installed reports whether the proxy is set up on this server.
func Installed(l state.Layout) bool {
	fi, err := os.Stat(Dir(l))
	return err == nil && fi.IsDir()
}

// Env is one app environment as the front door sees it.
type Env struct {
	AppEnv      state.AppEnv
	Domains     []string
	Maintenance bool
	// Page is the maintenance page of the live release (nil: the built-in one).
	Page      []byte
	Upstreams Upstreams
	// Live: a version has been deployed (an app environment that never
	// was gets no route).
	Live bool
	// Git: pushes to a git branch deploy it; its webhook is reached
	// through its host names at /hooks/APP/ENV (docs/git.md).
	Git bool
}

// Input is everything Render needs.
type Input struct {
	Proxy state.Proxy
	Envs  []Env
	// Issued reports whether a certificate for host is in the proxy's
	// storage: HTTP is redirected to HTTPS only then.
	Issued func(host string) bool
	// Notes are Read's: app environments routed as before, or not at all,
	// because their app.json does not parse. Render returns them first.
	Notes []string
	// Webhook is where the git webhook listens on loopback
	// ("127.0.0.1:9100"), if it is installed.
	Webhook string
	// Draining is the directory of the markers that make an app
	// environment's health path say "draining" (DrainDir).
	Draining string
	// Where the proxy listens and keeps its files; empty: the server's
	// (":80", ":443", AdminSocket, StorageDir). Tests run a proxy of
	// their own elsewhere.
	HTTP, HTTPS, Admin, Storage string
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// EnvOf reads what the front door needs of ae beyond its app.json.
func EnvOf(l state.Layout, ae state.AppEnv, a *state.App) (Env, error) {
	e := Env{AppEnv: ae, Domains: a.Domains, Maintenance: a.Maintenance, Live: a.CurrentVersion != "", Git: a.Git != nil}
	u, err := ReadUpstreams(l, ae)
	if err != nil {
		return e, err
	}
	if len(u.Web) > 0 || u.Static != "" {
		// A first deploy routes its web instances before app.json says
		// live (the node hook loads them), so they are served when it does.
		e.Live = true
	}
	if len(u.Web) == 0 && len(u.Draining) == 0 {
		// Deployed before the front door: its web port, if it has one.
		if p, err := ports.Lookup(l.AppDir(ae), "web"); err == nil {
			u.Web = []string{fmt.Sprintf("127.0.0.1:%d", p)}
		}
	}
	e.Upstreams = u
	if a.Maintenance {
		e.Page, err = readPage(filepath.Join(l.Current(ae), MaintenancePage))
		if err != nil {
			return e, err
		}
	}
	return e, nil
}

func readPage(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPage+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPage {
		return nil, fmt.Errorf("%s: over %d KiB: make the maintenance page smaller (link its images instead of embedding them)", path, maxPage>>10)
	}
	return b, nil
}

// Read gathers the Input from the tree under l. An app environment
// whose app.json does not parse keeps the routes it had when the proxy
// last accepted a configuration (Record), with a note: the others go on,
// and nothing already routed is dropped.
func Read(l state.Layout) (Input, error) {
	var s state.Server
	if err := state.Read(l.ServerJSON(), &s); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Input{}, err
	}
	aes, err := l.AppEnvs()
	if err != nil {
		return Input{}, err
	}
	var envs []Env
	var errs []error
	var notes []string
	var last map[string]recorded
	for _, ae := range aes {
		var a state.App
		if err := state.Read(l.AppJSON(ae), &a); err != nil {
			var pe *state.ParseError
			if !errors.As(err, &pe) {
				errs = append(errs, err)
				continue
			}
			if last == nil {
				last = readRecord(l)
			}
			r, ok := last[ae.String()]
			if !ok {
				notes = append(notes, fmt.Sprintf("%s: not routed: %v", ae, err))
				continue
			}
			notes = append(notes, fmt.Sprintf("%s: routed as before: %v", ae, err))
			a = state.App{Domains: r.Domains, Maintenance: r.Maintenance}
			if r.Live {
				a.CurrentVersion = "unknown"
			}
			if r.Git {
				a.Git = &state.Git{}
			}
		}
		if a.Destroy != nil {
			continue // being destroyed: never routed again
		}
		e, err := EnvOf(l, ae, &a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		envs = append(envs, e)
	}
	in := Gather(l, s, envs)
	in.Notes = notes
	return in, errors.Join(errs...)
}

// recorded is what an app environment's app.json said when the proxy last
// accepted a configuration.
type recorded struct {
	Domains     []string `json:"domains,omitempty"`
	Maintenance bool     `json:"maintenance,omitempty"`
	Live        bool     `json:"live,omitempty"`
	Git         bool     `json:"git,omitempty"`
}

// RecordFile is where Record keeps them.
func RecordFile(l state.Layout) string { return filepath.Join(Dir(l), "envs.json") }

// Record keeps what in's app environments said, for Read to route one
// whose app.json stops parsing as it was routed.
func Record(l state.Layout, in Input) error {
	m := map[string]recorded{}
	for _, e := range in.Envs {
		m[e.AppEnv.String()] = recorded{Domains: e.Domains, Maintenance: e.Maintenance, Live: e.Live, Git: e.Git}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(RecordFile(l), append(b, '\n'), 0o644)
}

func readRecord(l state.Layout) map[string]recorded {
	m := map[string]recorded{}
	b, err := os.ReadFile(RecordFile(l))
	if err == nil {
		json.Unmarshal(b, &m)
	}
	return m
}

// Gather is the Input for the app environments envs on a server whose
// server.json is s: what the planner renders to compare, and Read.
func Gather(l state.Layout, s state.Server, envs []Env) Input {
	in := Input{Envs: envs, Issued: IssuedIn(StorageDir), Webhook: webhookAddr(WebhookSocket), Draining: DrainDir(l)}
	if s.Proxy != nil {
		in.Proxy = *s.Proxy
	}
	return in
}

// WebhookSocket is the git webhook's socket unit, where `jeagent git
// setup` installs it.
const WebhookSocket = "/etc/systemd/system/jeagent-webhook.socket"

// webhookAddr is the loopback address the webhook's socket unit at path
// listens on ("" if none: not installed, or on all addresses).
func webhookAddr(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "ListenStream="); ok && checkUpstream(v) == nil {
			return v
		}
	}
	return ""
}

// IssuedIn reports whether Caddy's file storage at dir holds a
// certificate for host (certificates/ISSUER/HOST/HOST.crt).
func IssuedIn(dir string) func(string) bool {
	return func(host string) bool {
		m, _ := filepath.Glob(filepath.Join(dir, "certificates", "*", host, host+".crt"))
		return len(m) > 0
	}
}

// accountSettle is how old an ACME account file must be before
// BrokenAccounts judges it: Caddy writes it in place, and a file being
// written does not parse either.
const accountSettle = time.Minute

// BrokenAccounts returns the directories of the ACME accounts in Caddy's
// file storage at dir whose registration file (acme/CA/users/EMAIL/NAME.json,
// its key beside it) does not parse and has not changed for a minute.
// Caddy 2.6.2's certmagic once wrote that file from two orders at once
// (two JSON objects end to end), and every later order failed with
// "getting ACME account: invalid character"; without the directory,
// Caddy registers a new account (proxy.RepairAccounts removes it).
func BrokenAccounts(dir string, now time.Time) []string {
	regs, _ := filepath.Glob(filepath.Join(dir, "acme", "*", "users", "*", "*.json"))
	var broken []string
	for _, reg := range regs {
		fi, err := os.Stat(reg)
		if err != nil || now.Sub(fi.ModTime()) < accountSettle {
			continue
		}
		if b, err := os.ReadFile(reg); err == nil && !json.Valid(b) {
			broken = append(broken, filepath.Dir(reg))
		}
	}
	return broken
}

// Applied returns the configuration the proxy last accepted (nil if none).
func Applied(l state.Layout) []byte {
	b, _ := os.ReadFile(AppliedFile(l))
	return b
}

// Site is one app environment's route: its host names and handler.
type site struct {
	env   Env
	hosts []string
}

// DefaultName is ae's name under the base domain.
func DefaultName(ae state.AppEnv, base string) string {
	if base == "" {
		return ""
	}
	return ae.App + "-" + ae.Env + "." + strings.TrimPrefix(base, ".")
}

// Render returns the proxy's whole configuration, and notes on what it
// could not route (a host claimed twice: the first app environment in
// name order keeps it).
func Render(in Input) ([]byte, []string) {
	notes := slices.Clone(in.Notes)
	owner := map[string]state.AppEnv{}
	var sites []site
	envs := slices.Clone(in.Envs)
	slices.SortFunc(envs, func(a, b Env) int { return strings.Compare(a.AppEnv.String(), b.AppEnv.String()) })
	claim := func(ae state.AppEnv, h string) bool {
		if o, ok := owner[h]; ok && o != ae {
			notes = append(notes, fmt.Sprintf("%s: host %s is %s's: not routed here (remove it from one of them)", ae, h, o))
			return false
		}
		owner[h] = ae
		return true
	}
	// Domains first: a domain wins over a default name.
	hosts := map[state.AppEnv][]string{}
	for _, e := range envs {
		if !e.Live && !e.Git {
			continue
		}
		for _, h := range e.Domains {
			if err := names.CheckHost(h); err != nil {
				// A hand edit: the others are routed, and the log says why not this one.
				notes = append(notes, fmt.Sprintf("%s: app.json domains: %v", e.AppEnv, err))
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
		sites = append(sites, site{env: e, hosts: hosts[e.AppEnv]})
	}
	def, note := defaultSite(in.Proxy.DefaultApp, sites)
	if note != "" {
		notes = append(notes, note)
	}

	var httpRoutes, httpsRoutes []any
	var tlsHosts []string
	loggers := map[string]string{}
	issued := in.Issued
	if issued == nil {
		issued = func(string) bool { return false }
	}
	for _, s := range sites {
		if len(s.hosts) == 0 {
			continue
		}
		logger := s.env.AppEnv.App + "_" + s.env.AppEnv.Env
		var redirect []string
		for _, h := range s.hosts {
			loggers[h] = logger
			if issued(h) {
				redirect = append(redirect, h)
			}
		}
		tlsHosts = append(tlsHosts, s.hosts...)
		if s.env.Git && in.Webhook != "" {
			// The git webhook, at its fixed path of each host name.
			hook := obj{
				"match":    []any{obj{"host": s.hosts, "path": []string{"/hooks/" + s.env.AppEnv.App + "/" + s.env.AppEnv.Env}}},
				"handle":   []any{obj{"handler": "reverse_proxy", "upstreams": []any{obj{"dial": in.Webhook}}}},
				"terminal": true,
			}
			httpsRoutes = append(httpsRoutes, hook)
			if len(redirect) == 0 {
				httpRoutes = append(httpRoutes, hook)
			}
		}
		// The health path, for a load balancer in front: over HTTP too
		// (not redirected), never sent to the app.
		health := healthRoute(s.hosts, s.env, in.Draining)
		httpRoutes = append(httpRoutes, health)
		httpsRoutes = append(httpsRoutes, health)
		if len(redirect) > 0 {
			// Not what a load balancer that ended the client's TLS sends
			// on (X-Forwarded-Proto: https, as an ALB's HTTPS listener
			// does): redirecting it would loop (docs/routing.md).
			r := route(redirect, obj{
				"handler": "static_response", "status_code": 308,
				"headers": obj{"Location": []string{"https://{http.request.host}{http.request.uri}"}},
			})
			r["match"] = []any{obj{"host": redirect, "not": []any{obj{"header": obj{"X-Forwarded-Proto": []string{"https"}}}}}}
			httpRoutes = append(httpRoutes, r)
		}
		httpRoutes = append(httpRoutes, route(s.hosts, handler(s.env)))
		httpsRoutes = append(httpsRoutes, route(s.hosts, handler(s.env)))
	}
	defaultLogger := ""
	if def != nil {
		httpRoutes = append(httpRoutes, healthRoute(nil, def.env, in.Draining))
		httpRoutes = append(httpRoutes, obj{"handle": []any{handler(def.env)}, "terminal": true})
		defaultLogger = def.env.AppEnv.App + "_" + def.env.AppEnv.Env
	} else {
		httpRoutes = append(httpRoutes, obj{"handle": []any{obj{
			"handler": "static_response", "status_code": 404,
			"headers": obj{"Content-Type": []string{"text/plain; charset=utf-8"}},
			"body":    "No app is served at this address: ask for one of its host names.\n",
		}}, "terminal": true})
	}
	// Instances being drained: on a route no request matches, so that
	// the proxy keeps counting their requests in flight.
	var draining []any
	for _, s := range sites {
		for _, a := range s.env.Upstreams.Draining {
			draining = append(draining, obj{"dial": a})
		}
	}
	for _, e := range envs {
		if !e.Live && !e.Git {
			for _, a := range e.Upstreams.Draining {
				draining = append(draining, obj{"dial": a})
			}
		}
	}
	if len(draining) > 0 {
		httpRoutes = append(httpRoutes, obj{
			"match":  []any{obj{"remote_ip": obj{"ranges": []string{"255.255.255.255/32"}}}},
			"handle": []any{obj{"handler": "reverse_proxy", "upstreams": draining}},
		})
	}
	servers := obj{"http": obj{
		"listen": []string{or(in.HTTP, ":80")}, "routes": httpRoutes,
		"logs": serverLogs(loggers, defaultLogger),
	}}
	// Caddy tells its HTTP server from its HTTPS one by these ports.
	apps := obj{"http": obj{"servers": servers, "http_port": port(in.HTTP, 80), "https_port": port(in.HTTPS, 443)}}
	if len(tlsHosts) > 0 {
		servers["https"] = obj{
			"listen": []string{or(in.HTTPS, ":443")}, "routes": httpsRoutes,
			"automatic_https": obj{"disable_redirects": true},
			"logs":            serverLogs(loggers, ""),
		}
		ca := in.Proxy.ACME.CA
		if ca == "" {
			ca = LetsEncrypt
		}
		issuer := obj{"module": "acme", "ca": ca}
		if in.Proxy.ACME.Email != "" {
			issuer["email"] = in.Proxy.ACME.Email
		}
		if in.Proxy.ACME.CARoot != "" {
			issuer["trusted_roots_pem_files"] = []string{in.Proxy.ACME.CARoot}
		}
		slices.Sort(tlsHosts)
		apps["tls"] = obj{"automation": obj{"policies": []any{obj{"subjects": tlsHosts, "issuers": []any{issuer}}}}}
	}
	cfg := obj{
		"admin":   obj{"listen": "unix/" + or(in.Admin, AdminSocket), "origins": []string{"localhost"}},
		"storage": obj{"module": "file_system", "root": or(in.Storage, StorageDir)},
		"apps":    apps,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(cfg); err != nil {
		panic(err) // maps of strings and slices always encode
	}
	return buf.Bytes(), notes
}

type obj = map[string]any

// port is addr's port, or def when addr is empty.
func port(addr string, def int) int {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		if n, err := strconv.Atoi(addr[i+1:]); err == nil {
			return n
		}
	}
	return def
}

// HealthPath answers a load balancer's health checks on every host name
// the front door routes (and on the bare address, for the default app):
// 200 "ok" while the app environment's web process is routed here, 503
// "draining" while this server switches it to a new release (DrainMarker),
// 503 when it has no web process. The app never sees the path.
const HealthPath = "/_jecloud/health"

// DrainDir holds the markers of the app environments being switched.
func DrainDir(l state.Layout) string { return filepath.Join(Dir(l), "draining") }

// DrainMarker is the file whose presence makes ae's health path say
// "draining" (Caddy looks for it at each check: no reload).
func DrainMarker(l state.Layout, ae state.AppEnv) string {
	return filepath.Join(DrainDir(l), markerName(ae))
}

func markerName(ae state.AppEnv) string { return ae.App + "_" + ae.Env }

// SetDraining makes ae's health path say "draining" (on) or not.
func SetDraining(l state.Layout, ae state.AppEnv, on bool) error {
	p := DrainMarker(l, ae)
	if !on {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// Draining reports whether ae's health path says "draining".
func Draining(l state.Layout, ae state.AppEnv) bool {
	_, err := os.Stat(DrainMarker(l, ae))
	return err == nil
}

// healthRoute answers HealthPath for e on hosts (nil: any host).
func healthRoute(hosts []string, e Env, drainDir string) obj {
	m := obj{"path": []string{HealthPath}}
	if hosts != nil {
		m["host"] = hosts
	}
	text := func(code int, body string) obj {
		return obj{"handler": "static_response", "status_code": code,
			"headers": obj{"Content-Type": []string{"text/plain; charset=utf-8"}, "Cache-Control": []string{"no-store"}},
			"body":    body}
	}
	// Checks every few seconds stay out of the access log.
	quiet := obj{"handler": "vars", "skip_log": true}
	var answer []any
	if len(e.Upstreams.Web) == 0 && e.Upstreams.Static == "" {
		answer = []any{obj{"handle": []any{text(503, "no web process\n")}}}
	} else {
		answer = []any{
			obj{"match": []any{obj{"file": obj{"root": drainDir, "try_files": []string{"/" + markerName(e.AppEnv)}}}},
				"handle": []any{text(503, "draining\n")}, "terminal": true},
			obj{"handle": []any{text(200, "ok\n")}},
		}
	}
	return obj{"match": []any{m}, "handle": []any{quiet, obj{"handler": "subroute", "routes": answer}}, "terminal": true}
}

func route(hosts []string, h any) obj {
	return obj{"match": []any{obj{"host": hosts}}, "handle": []any{h}, "terminal": true}
}

func serverLogs(loggers map[string]string, def string) obj {
	l := obj{}
	if len(loggers) > 0 {
		l["logger_names"] = loggers
	}
	if def != "" {
		l["default_logger_name"] = def
	}
	return l
}

// handler answers for one app environment: its web instances, balanced,
// or a 503 in maintenance or with none running.
func handler(e Env) any {
	if e.Maintenance {
		page := e.Page
		ctype := "text/html; charset=utf-8"
		if page == nil {
			page = []byte("<!doctype html>\n<title>Down for maintenance</title>\n<h1>Down for maintenance</h1>\n<p>We will be back shortly.</p>\n")
		}
		return obj{
			"handler": "static_response", "status_code": 503,
			"headers": obj{"Content-Type": []string{ctype}, "Retry-After": []string{"120"}, "Cache-Control": []string{"no-store"}},
			"body":    literal(string(page)),
		}
	}
	if len(e.Upstreams.Web) == 0 && e.Upstreams.Static != "" {
		// A static site: the copy holds regular files and directories
		// only (no link leads out of it); no listing of a directory.
		return obj{"handler": "file_server", "root": e.Upstreams.Static}
	}
	if len(e.Upstreams.Web) == 0 {
		return obj{
			"handler": "static_response", "status_code": 503,
			"headers": obj{"Content-Type": []string{"text/plain; charset=utf-8"}},
			"body":    e.AppEnv.String() + " has no web process running on this server.\n",
		}
	}
	var ups []any
	for _, a := range e.Upstreams.Web {
		ups = append(ups, obj{"dial": a})
	}
	return obj{
		"handler":   "reverse_proxy",
		"upstreams": ups,
		// An instance that refuses connections (it crashed; systemd
		// restarts it) is skipped for 10 s, and the request tried on
		// another for up to 5 s.
		"load_balancing": obj{"selection_policy": obj{"policy": "round_robin"}, "try_duration": "5s", "try_interval": "100ms"},
		"health_checks":  obj{"passive": obj{"fail_duration": "10s"}},
	}
}

// literal escapes Caddy's placeholders ({env.X}, {http.request.header.Y})
// in text from a bundle, so that a page is sent as written and cannot read
// the proxy's environment or the request's headers into the answer.
func literal(s string) string {
	return strings.NewReplacer("{", `\{`, "}", `\}`).Replace(s)
}

// defaultSite is the app environment served on the bare address: the one
// server.json names, else the only one with a web process or a static site.
func defaultSite(name string, sites []site) (*site, string) {
	if name != "" {
		for i := range sites {
			if sites[i].env.AppEnv.String() == name {
				return &sites[i], ""
			}
		}
		return nil, fmt.Sprintf("server.json: proxy.default_app %q is no app environment deployed here: nothing is served on the bare address", name)
	}
	var only *site
	for i := range sites {
		if len(sites[i].env.Upstreams.Web) == 0 && sites[i].env.Upstreams.Static == "" {
			continue
		}
		if only != nil {
			return nil, ""
		}
		only = &sites[i]
	}
	return only, ""
}
