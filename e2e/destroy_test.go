//go:build e2e

package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/lab"
)

// TestAppsDestroy (#20 §4): `jepush apps:destroy ENV` on a real server
// with its front door and a Redis per app. It is refused without a
// terminal and without --confirm (and with the wrong name); with it, the
// app's units, user, ports and route go, the other app on the server is
// untouched, and Redis's data stays; pushed again, the app comes back on
// its old data; destroyed with --data, the data goes too.
func TestAppsDestroy(t *testing.T) {
	lab.Require(t)
	t.Parallel() // mostly waiting (docs/lab.md: lab tests in parallel)
	jeagent, jepush := binaries(t)
	srv := lab.Boot(t, 1)[0]
	if err := srv.CopyIn(jeagent, "/usr/local/bin/jeagent"); err != nil {
		t.Fatal(err)
	}
	srv.MustExec("jeagent", "init")
	push := jepushTo(t, jepush, srv)
	get := func(host string) (int, string) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", srv.Addr.String()+":80")
			},
		}}
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
		toml := fmt.Sprintf("app = %q\n", app)
		if app == "shop" {
			toml += "\n[services]\nredis = \"\"\n"
		}
		writeFiles(t, dir, map[string]string{"server.js": stockServer, "Procfile": "web: node server.js\n", "jecloud.toml": toml})
	}
	deploy := func(app string) {
		t.Helper()
		start := time.Now()
		if code, out := push(dirs[app], "prod"); code != 0 {
			t.Fatalf("jepush %s: exit %d\n%s", app, code, out)
		}
		if code, out := push("domains:add", "prod", app+".example.com", "--dir", dirs[app]); code != 0 && !strings.Contains(out, "already") {
			t.Fatalf("domains:add %s: exit %d\n%s", app, code, out)
		}
		eventually(t, 15*time.Second, app+".example.com served", func() bool {
			c, b := get(app + ".example.com")
			return c == 200 && strings.HasPrefix(b, app+"/prod ")
		})
		t.Logf("%s pushed and routed in %s", app, time.Since(start).Round(time.Millisecond))
	}
	deploy("shop")
	deploy("blog")
	// Something in shop's Redis, saved to its data directory.
	redisCLI := func(args ...string) string {
		pass := strings.TrimSpace(srv.MustExec("cat", "/var/cloud/shop/prod/redis.password"))
		port := strings.TrimSpace(srv.MustExec("python3", "-c", `import json; print(json.load(open("/var/cloud/shop/prod/ports.json"))["redis"])`))
		out, _ := srv.Exec(t.Context(), append([]string{"redis-cli", "--no-auth-warning", "-a", pass, "-p", port}, args...)...)
		return strings.TrimSpace(out)
	}
	if got := redisCLI("SET", "greeting", "kept"); got != "OK" {
		t.Fatalf("redis SET: %q", got)
	}
	redisCLI("SAVE")
	shopUnits := func() string {
		out, _ := srv.Exec(t.Context(), "sh", "-c", "systemctl list-units --all --no-legend --plain 'jecloud-shop_prod_*' | awk '{print $1}'; ls /etc/systemd/system | grep shop_prod || true")
		return strings.TrimSpace(out)
	}
	// Not routed: the front door's configuration no longer names the
	// host, and it is not served by shop (blog, the only app left, is
	// the server's default: it answers any host name).
	notRouted := func(after string) {
		t.Helper()
		if cfg := srv.MustExec("cat", "/var/cloud/sys/proxy/caddy.json"); strings.Contains(cfg, "shop.example.com") || strings.Contains(cfg, "shop_prod") {
			t.Errorf("the front door's configuration still routes shop after %s", after)
		}
		if c, b := get("shop.example.com"); strings.HasPrefix(b, "shop/") {
			t.Errorf("shop.example.com after %s: %d %q: still served by shop", after, c, b)
		} else {
			t.Logf("shop.example.com after %s: %d %q", after, c, strings.TrimSpace(b))
		}
	}
	before := shopUnits()
	contains(t, "shop's units before", before, "jecloud-shop_prod_redis.service", "jecloud-shop_prod_web")

	// Refused: no terminal and no --confirm; the wrong name.
	code, out := push("apps:destroy", "prod", "--dir", dirs["shop"])
	if code != 2 {
		t.Errorf("apps:destroy without --confirm and without a terminal: exit %d, want 2\n%s", code, out)
	}
	contains(t, "the refusal", out, "--confirm shop", "nothing was destroyed")
	code, out = push("apps:destroy", "prod", "--dir", dirs["shop"], "--confirm", "blog")
	if code != 2 {
		t.Errorf("apps:destroy --confirm blog (not the app): exit %d, want 2\n%s", code, out)
	}
	if c, _ := get("shop.example.com"); c != 200 || shopUnits() != before {
		t.Fatalf("a refused destroy changed something: GET %d, units %q", c, shopUnits())
	}

	// Destroyed, data kept.
	start := time.Now()
	code, out = push("apps:destroy", "prod", "--dir", dirs["shop"], "--confirm", "shop")
	t.Logf("apps:destroy (data kept) in %s:\n%s", time.Since(start).Round(time.Millisecond), out)
	if code != 0 {
		t.Fatalf("apps:destroy: exit %d", code)
	}
	contains(t, "apps:destroy's output", out, "shop/prod destroyed", "user jc-shop_prod removed")
	if u := shopUnits(); u != "" {
		t.Errorf("units of shop/prod left after apps:destroy:\n%s", u)
	}
	if out, err := srv.Exec(t.Context(), "getent", "passwd", "jc-shop_prod"); err == nil {
		t.Errorf("getent passwd jc-shop_prod after apps:destroy: %s", out)
	}
	notRouted("apps:destroy")
	if c, b := get("blog.example.com"); c != 200 || !strings.HasPrefix(b, "blog/prod ") {
		t.Errorf("blog.example.com after shop's destroy: %d %q", c, b)
	}
	left := srv.MustExec("sh", "-c", "cd /var/cloud/shop/prod && ls -A; ls redis")
	t.Logf("/var/cloud/shop/prod after apps:destroy without --data:\n%s", left)
	contains(t, "what stays", left, "dump.rdb", "redis.password")
	for _, gone := range []string{"app.json", "source", "ports.json", "config.env"} {
		if strings.Contains(left, gone+"\n") {
			t.Errorf("%s is left after apps:destroy", gone)
		}
	}
	if s := srv.MustExec("jeagent", "status", "--json"); strings.Contains(s, `"shop"`) {
		t.Errorf("jeagent status still lists shop:\n%s", s)
	}
	// A tick does not bring it back.
	srv.MustExec("jeagent", "rollforward")
	if u := shopUnits(); u != "" {
		t.Errorf("a roll-forward brought units back:\n%s", u)
	}

	// Pushed again: back, on its old data.
	deploy("shop")
	if got := redisCLI("GET", "greeting"); got != "kept" {
		t.Errorf("redis GET greeting after the destroy without --data and a push: %q, want \"kept\"", got)
	}
	// push --json (#20 §6): one object on stdout, the progress on stderr.
	home := lab.SSHHome(t, srv)
	cmd := exec.Command(jepush, "push", dirs["shop"], "prod", "--json", "--force", "--host", "root@"+srv.Addr.String())
	cmd.Env = append(os.Environ(), "HOME="+home, "SSH_AUTH_SOCK=", "NO_COLOR=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("push --json: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	var res struct {
		OK    bool `json:"ok"`
		Hosts []struct {
			Version, Live, State string
			URLs                 []string
		} `json:"hosts"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("push --json: stdout is not one JSON object: %v\n%s", err, stdout.String())
	}
	t.Logf("push --json printed:\n%s", stdout.String())
	if h := res.Hosts; !res.OK || len(h) != 1 || h[0].State != "live" || h[0].Version != readApp(t, srv, "shop", "prod").CurrentVersion ||
		!slices.Contains(h[0].URLs, "https://shop.example.com/") || !slices.Contains(h[0].URLs, "http://"+srv.Addr.String()+"/") {
		t.Errorf("push --json: %+v", res)
	}
	contains(t, "push --json's stderr (the progress)", stderr.String(), "deploying ", "is live")

	// Destroyed with --data: the data goes too.
	code, out = push("apps:destroy", "prod", "--dir", dirs["shop"], "--confirm", "shop", "--data")
	if code != 0 {
		t.Fatalf("apps:destroy --data: exit %d\n%s", code, out)
	}
	if out, err := srv.Exec(t.Context(), "ls", "-A", "/var/cloud/shop/prod"); err == nil {
		t.Errorf("/var/cloud/shop/prod is left after apps:destroy --data:\n%s", out)
	}
	if u := shopUnits(); u != "" {
		t.Errorf("units of shop/prod left after apps:destroy --data:\n%s", u)
	}
	notRouted("apps:destroy --data")
	code, out = push("apps:destroy", "prod", "--dir", dirs["shop"], "--confirm", "shop")
	if code == 0 || !strings.Contains(out, "nothing to destroy") {
		t.Errorf("apps:destroy of a destroyed app: exit %d\n%s", code, out)
	}
}
