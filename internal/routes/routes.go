// Package routes renders the front door's configuration from the state
// tree: which host names go to which app environment's web instances, the
// default app on the server's bare address, maintenance pages, and where
// certificates come from. The front door is two programs: HAProxy on ports
// 80 and 443 (haproxy.cfg: TLS, routing by host name, the app's requests
// straight to its web instances, the access log) and Caddy behind it on
// loopback (caddy.json: ACME certificates, static sites, maintenance
// pages, the health path, the git webhook). It only reads, and links no
// network code, so that the roll-forward's planner (and jeagent-tick) can
// tell whether the running front door is behind the state. Package proxy
// loads what it renders. See docs/routing.md.
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
	"strings"
	"time"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/ports"
	"github.com/jecloud/jecloud/internal/state"
)

// Where the front door runs (jecloud-haproxy.service and
// jecloud-proxy.service, docs/routing.md).
const (
	// AdminSocket is Caddy's admin API (systemd's RuntimeDirectory of
	// jecloud-proxy.service, 0700).
	AdminSocket = "/run/jecloud-proxy/admin.sock"
	// StorageDir is where Caddy keeps certificates and ACME accounts
	// (the unit's StateDirectory).
	StorageDir = "/var/lib/jecloud-proxy/data"
	// BackendAddr is where Caddy serves HAProxy on loopback: ACME
	// challenges, static sites, maintenance pages, the health path and
	// the git webhook (below the instances' ports and ports.json's).
	BackendAddr = "127.0.0.1:4480"
	// MasterSocket is HAProxy's master CLI (the RuntimeDirectory of
	// jecloud-haproxy.service, 0700).
	MasterSocket = "/run/jecloud-haproxy/master.sock"
	// JournalSocket is journald's syslog socket: HAProxy's access log.
	JournalSocket = "/run/systemd/journal/dev-log"
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

// AppliedFile is the configuration Caddy last accepted, for people to
// read and for the planner to compare with.
func AppliedFile(l state.Layout) string { return filepath.Join(Dir(l), "caddy.json") }

// HAProxyFile is HAProxy's configuration: what it runs, as it last
// accepted it (jecloud-haproxy.service reads it at start and reload).
func HAProxyFile(l state.Layout) string { return filepath.Join(Dir(l), "haproxy.cfg") }

// Config is the front door's whole configuration.
type Config struct {
	Caddy, HAProxy []byte
}

// Equal reports whether c and o are the same configuration.
func (c Config) Equal(o Config) bool {
	return bytes.Equal(c.Caddy, o.Caddy) && bytes.Equal(c.HAProxy, o.HAProxy)
}

// Applied returns the configuration the front door last accepted (nil
// parts if none).
func Applied(l state.Layout) Config {
	c, _ := os.ReadFile(AppliedFile(l))
	h, _ := os.ReadFile(HAProxyFile(l))
	return Config{Caddy: c, HAProxy: h}
}

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
	// CertFile is the certificate Caddy keeps for host (its key beside
	// it, .key for .crt), "" while there is none: HTTPS is served with it,
	// and HTTP redirected to HTTPS, only then.
	CertFile func(host string) string
	// Notes are Read's: app environments routed as before, or not at all,
	// because their app.json does not parse. Render returns them first.
	Notes []string
	// Webhook is where the git webhook listens on loopback
	// ("127.0.0.1:9100"), if it is installed.
	Webhook string
	// Draining is the directory of the markers that make an app
	// environment's health path say "draining" (DrainDir).
	Draining string
	// Where the front door listens and keeps its files; empty: the
	// server's (HAProxy on ":80" and ":443", Caddy on Backend with its
	// admin API on AdminSocket and its certificates in StorageDir). Tests
	// run a front door of their own elsewhere.
	HTTP, HTTPS, Backend, Admin, Storage string
	// Log is where HAProxy sends its access log (syslog: "" is
	// JournalSocket); User the user its workers run as ("" is "haproxy",
	// "-" keeps the one that started it).
	Log, User string
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
	in := Input{Envs: envs, CertFile: CertFileIn(StorageDir), Webhook: webhookAddr(WebhookSocket), Draining: DrainDir(l)}
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

// CertFileIn returns the certificate Caddy's file storage at dir holds
// for host (certificates/ISSUER/HOST/HOST.crt, its key HOST.key beside it),
// "" if none.
func CertFileIn(dir string) func(string) string {
	return func(host string) string {
		m, _ := filepath.Glob(filepath.Join(dir, "certificates", "*", host, host+".crt"))
		if len(m) == 0 {
			return ""
		}
		slices.Sort(m)
		return m[0]
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
