//go:build e2e

package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/lab"
)

// stockServer is a web process as Heroku's getting-started apps write it:
// it binds $PORT, and has no SIGTERM handler.
const stockServer = `require("http").createServer((q, s) => s.end(process.env.JECLOUD_APP + "/" + process.env.JECLOUD_ENV + " " + q.headers.host + "\n")).listen(process.env.PORT);
`

// TestFrontDoor: `jeagent init` runs the front door (HAProxy on port 80,
// Caddy behind it); two app environments are served by host name, a hand
// edit of app.json's domains is applied by the next roll-forward, the bare
// address goes to the default app; a configuration Caddy refuses keeps the
// running one and says why; HAProxy and Caddy killed by a signal are
// restarted by systemd with every route.
func TestFrontDoor(t *testing.T) {
	lab.Require(t)
	jeagent, jepush := binaries(t)
	srv := lab.BootWith(t, 1, lab.Options{Persistent: true})[0] // it reboots at the end
	if err := srv.CopyIn(jeagent, "/usr/local/bin/jeagent"); err != nil {
		t.Fatal(err)
	}
	srv.MustExec("jeagent", "init")
	nodeVersion := installMirror(t, srv)
	major := strings.Split(nodeVersion, ".")[0]
	push := jepushTo(t, jepush, srv)
	state := func(unit string) string {
		out, _ := srv.Exec(t.Context(), "systemctl", "is-active", unit)
		return strings.TrimSpace(out)
	}
	for _, unit := range []string{"jecloud-haproxy.service", "jecloud-proxy.service"} {
		if s := state(unit); s != "active" {
			j, _ := srv.Exec(t.Context(), "journalctl", "-n", "30", "--no-pager", "-u", unit)
			t.Fatalf("%s after jeagent init: %s\n%s", unit, s, j)
		}
	}
	for _, unit := range []string{"caddy.service", "haproxy.service"} {
		if s := state(unit); s == "active" {
			t.Errorf("Debian's %s is still %s after jeagent init", unit, s)
		}
	}

	get := func(host string) (int, string) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", srv.Addr.String()+":80")
			},
		}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get("http://" + host + "/")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	dirs := map[string]string{}
	for _, app := range []string{"shop", "blog"} {
		dir := t.TempDir()
		dirs[app] = dir
		pkg, _ := json.Marshal(map[string]any{"name": app, "engines": map[string]string{"node": major + ".x"}})
		writeFiles(t, dir, map[string]string{
			"package.json": string(pkg), "server.js": stockServer, "Procfile": "web: node server.js\n",
			"jecloud.toml": fmt.Sprintf("app = %q\n\n[web]\nsocket = false\n", app),
		})
		if code, out := push(dir, "prod"); code != 0 {
			t.Fatalf("jepush %s: exit %d\n%s", app, code, out)
		}
		if app == "shop" {
			// The only app on the server: it answers on the bare address.
			eventually(t, 10*time.Second, "shop/prod on the bare address", func() bool {
				code, body := get(srv.Addr.String())
				return code == 200 && strings.HasPrefix(body, "shop/prod ")
			})
		}
	}
	if code, body := get(srv.Addr.String()); code != 404 || !strings.Contains(body, "No app is served at this address") {
		t.Errorf("bare address with two apps and no default: %d %q", code, body)
	}
	// Who pushed what: jepush releases, over SSH.
	code, out := push("releases", "prod", "--dir", dirs["shop"])
	t.Logf("jepush releases prod:\n%s", out)
	if code != 0 || !strings.Contains(out, "live") || !strings.Contains(out, "@") {
		t.Errorf("jepush releases: exit %d", code)
	}

	// Domains by hand, and a default app: the next roll-forward applies them.
	edit := func(path, key, value string) { // as a person would, keeping the other keys
		srv.MustExec("python3", "-c", `import json, sys
p, k, v = sys.argv[1:]
d = json.load(open(p))
d[k] = json.loads(v)
json.dump(d, open(p, "w"), indent=2)`, path, key, value)
	}
	edit("/var/cloud/shop/prod/app.json", "domains", `["shop.example.com"]`)
	edit("/var/cloud/blog/prod/app.json", "domains", `["blog.example.com"]`)
	edit("/var/cloud/sys/server.json", "proxy", `{"default_app": "blog/prod", "base_domain": "apps.example.net"}`)
	srv.MustExec("jeagent", "rollforward")
	for host, want := range map[string]string{
		"shop.example.com": "shop/prod shop.example.com", "blog.example.com": "blog/prod blog.example.com",
		"shop-prod.apps.example.net": "shop/prod shop-prod.apps.example.net", srv.Addr.String(): "blog/prod " + srv.Addr.String(),
	} {
		if code, body := get(host); code != 200 || strings.TrimSpace(body) != want {
			t.Errorf("GET http://%s/: %d %q, want 200 %q", host, code, body, want)
		}
	}

	// A configuration Caddy refuses: the running one stays, the reason shows.
	edit("/var/cloud/sys/server.json", "proxy", `{"default_app": "blog/prod", "acme": {"ca_root": "/nonexistent/root.pem"}}`)
	out, _ = srv.Exec(t.Context(), "jeagent", "rollforward")
	t.Logf("roll-forward with a configuration Caddy refuses:\n%s", out)
	if !strings.Contains(out, "route failed") || !strings.Contains(out, "keeps the running one") || !strings.Contains(out, "/nonexistent/root.pem") {
		t.Errorf("the refusal and Caddy's reason are not in the roll-forward's output")
	}
	if code, body := get("shop.example.com"); code != 200 || !strings.HasPrefix(body, "shop/prod") {
		t.Errorf("after a refused configuration, shop.example.com: %d %q", code, body)
	}
	status := srv.MustExec("jeagent", "status")
	if !strings.Contains(status, "/nonexistent/root.pem") {
		t.Errorf("jeagent status does not say why the front door kept its configuration:\n%s", status)
	}
	edit("/var/cloud/sys/server.json", "proxy", `{"default_app": "blog/prod", "base_domain": "apps.example.net"}`)
	srv.MustExec("jeagent", "rollforward", "--retry")

	// Killed: systemd restarts them, and they start with every route.
	pid := strings.TrimSpace(srv.MustExec("systemctl", "show", "-P", "MainPID", "jecloud-haproxy.service"))
	srv.MustExec("kill", "-9", pid)
	srv.MustExec("systemctl", "kill", "-s", "KILL", "jecloud-proxy.service")
	eventually(t, 15*time.Second, "the front door back after kill -9", func() bool {
		code, body := get("blog.example.com")
		return code == 200 && strings.HasPrefix(body, "blog/prod")
	})
	if code, body := get("shop.example.com"); code != 200 || !strings.HasPrefix(body, "shop/prod") {
		t.Errorf("after the restart, shop.example.com: %d %q", code, body)
	}
	after := strings.TrimSpace(srv.MustExec("systemctl", "show", "-P", "MainPID", "jecloud-haproxy.service"))

	// A reboot: everything is served again.
	if err := srv.Reboot(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "both apps served after a reboot", func() bool {
		c1, b1 := get("blog.example.com")
		c2, b2 := get("shop.example.com")
		return c1 == 200 && strings.HasPrefix(b1, "blog/prod") && c2 == 200 && strings.HasPrefix(b2, "shop/prod")
	})
	t.Logf("summary: front door on port 80: 2 apps by host name, default name and bare address; a refused configuration kept the running one; HAProxy killed (pid %s) with Caddy, restarted by systemd (pid %s) with every route; all served again after a reboot", pid, after)
}
