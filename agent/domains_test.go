package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/jecloud/jecloud/internal/state"
)

// idle waits until no roll-forward holds the lock of root (the commands
// below start one in the background to apply their change).
func idle(t *testing.T, root string) {
	t.Helper()
	fl := flock.New(state.Layout{Root: root}.PIDFile())
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok, _ := fl.TryLock(); ok {
			fl.Unlock()
			return
		}
	}
	t.Fatal("a roll-forward still runs after 20 s")
}

// TestDomainsAndMaintenance: the front door's commands record their change
// in app.json, refuse invalid and taken host names naming the value and
// the owner, start a roll-forward, and show in domains and status.
func TestDomainsAndMaintenance(t *testing.T) {
	root := t.TempDir()
	run(t, root, nil, nil, "init", "--no-systemd")
	steps := []struct {
		args []string
		code int
		want string // in stdout, or in stderr when code != 0
	}{
		{[]string{"domains", "web", "prod"}, 0, "web/prod: no domains (add one with `jepush domains:add prod HOST`)"},
		{[]string{"domains:add", "web", "prod", "www.example.com", "api.example.com"}, 0, "web/prod: added www.example.com, api.example.com"},
		{[]string{"domains:add", "web", "prod", "www.example.com"}, 0, "already routed here: nothing to do"},
		{[]string{"domains:add", "blog", "prod", "blog.example.com", "www.example.com"}, 1, `host name "www.example.com" is held by web/prod on this server`},
		{[]string{"domains:add", "blog", "prod", "WWW.example.com"}, 1, `invalid host name "WWW.example.com": use lowercase (www.example.com)`},
		{[]string{"domains:add", "blog", "prod", "10.0.0.1"}, 1, "an IP address is not a host name"},
		{[]string{"domains:add", "blog", "prod"}, 1, "want 3 to"},
		{[]string{"domains:add", "blog", "prod", "blog.example.com"}, 0, "blog/prod: added blog.example.com"},
		{[]string{"domains:remove", "web", "prod", "api.example.com"}, 0, "web/prod: removed api.example.com"},
		{[]string{"domains:remove", "web", "prod", "api.example.com"}, 0, `"api.example.com" is not one of its domains: nothing to do`},
		{[]string{"domains:add", "blog", "prod", "api.example.com"}, 0, "blog/prod: added api.example.com"},
		{[]string{"maintenance:on", "web", "prod"}, 0, "web/prod: maintenance on"},
		{[]string{"maintenance:on", "web", "prod"}, 0, "maintenance is already on: nothing to do"},
		{[]string{"status", "web", "prod"}, 0, "maintenance: ON"},
		{[]string{"domains", "web", "prod"}, 0, "www.example.com"},
	}
	for _, s := range steps {
		r := run(t, root, nil, nil, s.args...)
		got := r.stdout
		if s.code != 0 {
			got = r.stderr
		}
		if r.code != s.code || !strings.Contains(got, s.want) {
			t.Errorf("jeagent %s: exit %d\nstdout: %s\nstderr: %s\nwant exit %d and %q", strings.Join(s.args, " "), r.code, r.stdout, r.stderr, s.code, s.want)
		}
		idle(t, root)
	}
	web := readApp(t, root)
	if strings.Join(web.Domains, " ") != "www.example.com" || !web.Maintenance {
		t.Errorf("web/prod app.json: domains %v, maintenance %v", web.Domains, web.Maintenance)
	}

	// The default name under the base domain, and the --json shape.
	l := state.Layout{Root: root}
	if _, err := state.UpdateServer(l.ServerJSON(), func(s *state.Server) error {
		s.Proxy = &state.Proxy{BaseDomain: "apps.example.com"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r := run(t, root, nil, nil, "domains", "web", "prod", "--json")
	var out struct {
		Domains []struct {
			Host        string          `json:"host"`
			Default     bool            `json:"default"`
			Certificate json.RawMessage `json:"certificate"`
		} `json:"domains"`
		Maintenance bool `json:"maintenance"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 {
		t.Fatalf("domains --json: %v %+v", err, r)
	}
	if len(out.Domains) != 2 || out.Domains[0].Host != "www.example.com" || out.Domains[1].Host != "web-prod.apps.example.com" ||
		!out.Domains[1].Default || string(out.Domains[0].Certificate) != "null" || !out.Maintenance {
		t.Errorf("domains --json: %s", r.stdout)
	}
	if r := run(t, root, nil, nil, "domains:add", "blog", "prod", "web-prod.apps.example.com"); r.code == 0 || !strings.Contains(r.stderr, "is held by web/prod") {
		t.Errorf("another's default name taken: %+v", r)
	}
	r = run(t, root, nil, nil, "status", "--json")
	var st struct {
		Apps []struct {
			App         string   `json:"app"`
			Domains     []string `json:"domains"`
			Maintenance bool     `json:"maintenance"`
		} `json:"apps"`
	}
	json.Unmarshal([]byte(r.stdout), &st)
	if len(st.Apps) != 2 || st.Apps[1].App != "web" || strings.Join(st.Apps[1].Domains, " ") != "www.example.com" || !st.Apps[1].Maintenance || st.Apps[0].Maintenance {
		t.Errorf("status --json: %s", r.stdout)
	}
	if r := run(t, root, nil, nil, "maintenance:off", "web", "prod"); r.code != 0 || readApp(t, root).Maintenance {
		t.Errorf("maintenance:off: %+v", r)
	}
	idle(t, root)
}

// TestProxyLogsFlags: --json goes with --proxy only, --type and --grep
// with the app's lines only; --type is a process type, never a unit
// pattern or a flag of journalctl's; with no request in the
// front door's journal (this machine has none of its own), --proxy says so
// and exits 0.
func TestProxyLogsFlags(t *testing.T) {
	root := t.TempDir()
	if r := run(t, root, nil, nil, "logs", "web", "prod", "--json"); r.code == 0 || !strings.Contains(r.stderr, "--json goes with --proxy") {
		t.Errorf("logs --json: %+v", r)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--type", "web@*.service --unit=ssh"}, `logs --type: process type "web@*.service --unit=ssh"`},
		{[]string{"--type=-f"}, `logs --type: process type "-f"`},
		{[]string{"--proxy", "--type", "web"}, "--type and --grep go with the app's own lines"},
		{[]string{"--proxy", "--grep", "x"}, "--type and --grep go with the app's own lines"},
	} {
		if r := run(t, root, nil, nil, append([]string{"logs", "web", "prod"}, c.args...)...); r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("logs %q: %+v, want %q", c.args, r, c.want)
		}
	}
	if _, err := exec.LookPath("journalctl"); err != nil {
		t.Skip("no journalctl here")
	}
	r := run(t, root, nil, nil, "logs", "web", "prod", "--proxy", "-n", "3")
	if r.code != 0 || !strings.Contains(r.stderr, "web/prod: no requests in the front door's log (jecloud-haproxy.service, logger http.log.access.web_prod)") {
		t.Errorf("logs --proxy: %+v", r)
	}
}
