package routes

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/state"
)

func env(app, e string, domains []string, web ...string) Env {
	return Env{AppEnv: state.AppEnv{App: app, Env: e}, Domains: domains, Upstreams: Upstreams{Web: web}, Live: true}
}

// hosts returns, per server, the host lists of its routes in order, and
// whether the server has a catch-all route.
func hosts(t *testing.T, cfg []byte) map[string][]string {
	t.Helper()
	var c struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Match []struct {
							Host     []string
							Path     []string
							RemoteIP any `json:"remote_ip"`
						}
						Handle []struct {
							Handler    string
							StatusCode int `json:"status_code"`
						}
					}
				}
			}
		}
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for name, s := range c.Apps.HTTP.Servers {
		for _, r := range s.Routes {
			if len(r.Match) > 0 && slices.Equal(r.Match[0].Path, []string{HealthPath}) {
				continue // TestHealthPath (internal/proxy), with real Caddy
			}
			what := r.Handle[0].Handler
			if r.Handle[0].StatusCode != 0 {
				what += ":" + string(rune('0'+r.Handle[0].StatusCode/100))
			}
			switch {
			case len(r.Match) == 0:
				out[name] = append(out[name], "*="+what)
			case r.Match[0].RemoteIP != nil:
				out[name] = append(out[name], "drain="+what)
			default:
				out[name] = append(out[name], strings.Join(r.Match[0].Host, ",")+strings.Join(r.Match[0].Path, "")+"="+what)
			}
		}
	}
	return out
}

// doors summarizes both configurations: HAProxy's frontends (which site
// each host name is, "*" for the bare address; "SITE>app" when its
// requests go straight to its web instances; "redirect HOSTS") and
// Caddy's routes ("caddy": host=handler, as hosts does).
func doors(t *testing.T, cfg Config) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	if c := hosts(t, cfg.Caddy)["backend"]; c != nil {
		out["caddy"] = c
	}
	front := ""
	for _, line := range strings.Split(string(cfg.HAProxy), "\n") {
		line = strings.TrimSpace(line)
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "frontend "):
			front = f[1]
		case strings.HasPrefix(line, "backend "):
			front = ""
		case front == "":
		case strings.HasPrefix(line, "http-request set-var(txn.site) str(") && strings.Contains(line, "-m found"):
			if !strings.HasPrefix(f[2], "str(-)") {
				out[front] = append(out[front], "*="+strings.TrimSuffix(strings.TrimPrefix(f[2], "str("), ")"))
			}
		case false:
			out[front] = append(out[front], "*="+strings.TrimSuffix(strings.TrimPrefix(f[2], "str("), ")"))
		case strings.HasPrefix(line, "http-request set-var(txn.site) str(") && strings.Contains(line, " if "):
			i := slices.Index(f, "str")
			out[front] = append(out[front], strings.Join(f[i+1:len(f)-1], ",")+"="+strings.TrimSuffix(strings.TrimPrefix(f[2], "str("), ")"))
		case strings.HasPrefix(line, "http-request redirect"):
			i := slices.Index(f, "str")
			j := slices.Index(f, "}")
			out[front] = append(out[front], "redirect "+strings.Join(f[i+1:j], ","))
		case strings.HasPrefix(line, "use_backend site_"):
			out[front] = append(out[front], strings.TrimPrefix(f[1], "site_")+">app")
		case strings.HasPrefix(line, "use_backend caddy if { var(txn.site)"):
			out[front] = append(out[front], f[7]+f[11]+">caddy")
		}
	}
	return out
}

func TestRender(t *testing.T) {
	for _, c := range []struct {
		name  string
		in    Input
		want  map[string][]string
		notes []string
	}{
		{
			name: "one app, no domain: the bare address",
			in:   Input{Envs: []Env{env("hello", "prod", nil, "127.0.0.1:5000")}},
			want: map[string][]string{"http": {"*=hello_prod", "hello_prod>app"}, "caddy": {"*=static_response:4"}},
		},
		{
			name: "two apps, no default: 404 on the bare address",
			in:   Input{Envs: []Env{env("a", "prod", []string{"a.example.com"}, "127.0.0.1:5000"), env("b", "prod", []string{"b.example.com"}, "127.0.0.1:5001")}},
			want: map[string][]string{
				"http":  {"a.example.com=a_prod", "b.example.com=b_prod", "a_prod>app", "b_prod>app"},
				"caddy": {"*=static_response:4"},
			},
		},
		{
			name: "default app named, base domain, a certificate issued",
			in: Input{
				Proxy: state.Proxy{BaseDomain: "apps.example.net", DefaultApp: "b/prod"},
				Envs:  []Env{env("a", "prod", []string{"a.example.com"}, "127.0.0.1:5000"), env("b", "prod", nil, "127.0.0.1:5001")},
				CertFile: func(h string) string {
					if h == "a.example.com" {
						return "/var/lib/jecloud-proxy/data/certificates/x/a.example.com/a.example.com.crt"
					}
					return ""
				},
			},
			want: map[string][]string{
				"http":  {"a.example.com,a-prod.apps.example.net=a_prod", "b-prod.apps.example.net=b_prod", "*=b_prod", "redirect a.example.com", "a_prod>app", "b_prod>app"},
				"https": {"a.example.com,a-prod.apps.example.net=a_prod", "b-prod.apps.example.net=b_prod", "*=b_prod", "a_prod>app", "b_prod>app"},
				"caddy": {"*=static_response:4"},
			},
		},
		{
			name: "a host claimed twice: the first in name order keeps it",
			in:   Input{Envs: []Env{env("b", "prod", []string{"x.example.com"}, "127.0.0.1:5001"), env("a", "prod", []string{"x.example.com"}, "127.0.0.1:5000")}},
			want: map[string][]string{
				"http":  {"x.example.com=a_prod", "a_prod>app", "b_prod>app"},
				"caddy": {"*=static_response:4"},
			},
			notes: []string{"b/prod: host x.example.com is a/prod's: not routed here (remove it from one of them)"},
		},
		{
			name: "maintenance, an instance draining, an app never deployed",
			in: Input{Envs: []Env{
				{AppEnv: state.AppEnv{App: "a", Env: "prod"}, Maintenance: true, Live: true, Upstreams: Upstreams{Web: []string{"127.0.0.1:10001"}, Draining: []string{"127.0.0.1:10000"}}},
				{AppEnv: state.AppEnv{App: "new", Env: "prod"}, Domains: []string{"new.example.com"}},
			}},
			want: map[string][]string{"http": {"*=a_prod"}, "caddy": {"*=static_response:5"}},
		},
		{
			name: "git webhook through the host names",
			in: Input{Webhook: "127.0.0.1:9100", Envs: []Env{
				{AppEnv: state.AppEnv{App: "a", Env: "prod"}, Domains: []string{"a.example.com"}, Git: true, Live: true, Upstreams: Upstreams{Web: []string{"127.0.0.1:10001"}}},
			}},
			want: map[string][]string{
				"http":  {"a.example.com=a_prod", "*=a_prod", "a_prod/hooks/a/prod>caddy", "a_prod>app"},
				"caddy": {"a.example.com/hooks/a/prod=reverse_proxy", "*=static_response:4"},
			},
		},
		{
			name: "a hand-edited domain that is no host name",
			in:   Input{Envs: []Env{env("a", "prod", []string{"a.example.com", "b.example.com:80", "x"}, "127.0.0.1:5000")}},
			want: map[string][]string{
				"http":  {"a.example.com=a_prod", "*=a_prod", "a_prod>app"},
				"caddy": {"*=static_response:4"},
			},
			notes: []string{"a/prod: app.json domains: NOTE", "a/prod: app.json domains: NOTE"},
		},
		{
			name:  "default_app that is not here",
			in:    Input{Proxy: state.Proxy{DefaultApp: "gone/prod"}, Envs: []Env{env("a", "prod", nil, "127.0.0.1:5000")}},
			want:  map[string][]string{"http": {"a_prod>app"}, "caddy": {"*=static_response:4"}},
			notes: []string{`server.json: proxy.default_app "gone/prod" is no app environment deployed here: nothing is served on the bare address`},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, notes := Render(c.in)
			got := doors(t, cfg)
			for name, want := range c.want {
				if !slices.Equal(got[name], want) && !(len(want) == 0 && len(got[name]) == 0) {
					t.Errorf("%s: %q, want %q", name, got[name], want)
				}
			}
			for name := range got {
				if _, ok := c.want[name]; !ok {
					t.Errorf("%s: %q, want none", name, got[name])
				}
			}
			for i := range notes {
				if i < len(c.notes) && strings.HasSuffix(c.notes[i], "NOTE") && strings.HasPrefix(notes[i], strings.TrimSuffix(c.notes[i], "NOTE")) {
					notes[i] = c.notes[i]
				}
			}
			if !slices.Equal(notes, c.notes) {
				t.Errorf("notes %q, want %q", notes, c.notes)
			}
			again, _ := Render(c.in)
			if !again.Equal(cfg) {
				t.Error("two renders of one input differ")
			}
		})
	}
}

func TestUpstreamsRefused(t *testing.T) {
	l := state.Layout{Root: t.TempDir()}
	ae := state.AppEnv{App: "a", Env: "prod"}
	os.MkdirAll(l.AppDir(ae), 0o755)
	for _, bad := range []string{"10.0.0.1:80", "127.0.0.1", "example.com:80", `127.0.0.1:80"}`} {
		if err := WriteUpstreams(l, ae, Upstreams{Web: []string{bad}}); err == nil {
			t.Errorf("WriteUpstreams(%q) accepted", bad)
		}
		os.WriteFile(filepath.Join(l.AppDir(ae), UpstreamsFile), []byte(`{"web": [`+string(must(json.Marshal(bad)))+`]}`), 0o644)
		if _, err := ReadUpstreams(l, ae); err == nil || !strings.Contains(err.Error(), "want a loopback address") {
			t.Errorf("ReadUpstreams with %q: %v", bad, err)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestMaintenancePageCap(t *testing.T) {
	l := state.Layout{Root: t.TempDir()}
	ae := state.AppEnv{App: "a", Env: "prod"}
	rel := filepath.Join(l.Versions(ae), "aaaaaaaaaaaa")
	os.MkdirAll(rel, 0o755)
	os.Symlink("aaaaaaaaaaaa", l.Current(ae))
	os.WriteFile(filepath.Join(rel, MaintenancePage), make([]byte, maxPage+1), 0o644)
	_, err := EnvOf(l, ae, &state.App{CurrentVersion: "aaaaaaaaaaaa", Maintenance: true})
	if err == nil || !strings.Contains(err.Error(), "maintenance.html: over 512 KiB") {
		t.Errorf("a page over the cap: %v", err)
	}
}

// TestStaticSite: a static site is served by a file server rooted at its
// copy, on its host names and on the bare address when it is the only
// app; upstreams.json may name a directory under sys/static only.
func TestStaticSite(t *testing.T) {
	l := state.Layout{Root: t.TempDir()}
	ae := state.AppEnv{App: "site", Env: "prod"}
	os.MkdirAll(l.AppDir(ae), 0o755)
	root := filepath.Join(StaticDir(l), "site", "prod", "v1")
	for _, bad := range []string{"/etc", filepath.Join(StaticDir(l), "..", "x"), StaticDir(l), "static/x", root + "/{env.HOME}", root + `\x`} {
		if err := WriteUpstreams(l, ae, Upstreams{Static: bad}); err == nil {
			t.Errorf("WriteUpstreams(static %q) accepted", bad)
		}
		os.WriteFile(filepath.Join(l.AppDir(ae), UpstreamsFile), []byte(`{"static": `+string(must(json.Marshal(bad)))+`}`), 0o644)
		if _, err := ReadUpstreams(l, ae); err == nil || !strings.Contains(err.Error(), "want a directory under") {
			t.Errorf("ReadUpstreams with static %q: %v", bad, err)
		}
	}
	if err := WriteUpstreams(l, ae, Upstreams{Static: root}); err != nil {
		t.Fatal(err)
	}
	e, err := EnvOf(l, ae, &state.App{Domains: []string{"site.example"}})
	if err != nil || !e.Live || e.Upstreams.Static != root {
		t.Fatalf("EnvOf: %+v %v", e, err)
	}
	all, _ := Render(Input{Envs: []Env{e}})
	cfg := all.Caddy
	got := hosts(t, cfg)
	if want := []string{"site.example=file_server", "*=file_server"}; !slices.Equal(got["backend"], want) {
		t.Errorf("caddy's routes %v, want %v", got["backend"], want)
	}
	if strings.Contains(string(all.HAProxy), "use_backend site_") {
		t.Errorf("HAProxy sends a static site to web instances:\n%s", all.HAProxy)
	}
	if !strings.Contains(string(cfg), `"root": "`+root+`"`) {
		t.Errorf("no file server rooted at %s:\n%s", root, cfg)
	}
	if strings.Contains(string(cfg), "no web process") {
		t.Errorf("a static site's health path says it has no web process:\n%s", cfg)
	}
	e.Maintenance = true
	all, _ = Render(Input{Envs: []Env{e}})
	if got := hosts(t, all.Caddy); got["backend"][0] != "site.example=static_response:5" {
		t.Errorf("maintenance: %v", got["backend"])
	}
}
