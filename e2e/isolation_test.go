//go:build e2e

package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// probeServer answers GET /?p=PATH...: for each path, what the process
// could see of it (a file's size, a directory's entries, or the error);
// and whether it could write a file in its own data directory.
const probeServer = `const http = require("http");
const fs = require("fs");
const os = require("os");
const server = http.createServer((req, res) => {
  const u = new URL(req.url, "http://x");
  const out = { user: os.userInfo().username, reads: {}, wrote: "" };
  for (const p of u.searchParams.getAll("p")) {
    try {
      const st = fs.statSync(p);
      out.reads[p] = st.isDirectory() ? "dir: " + fs.readdirSync(p).join(",") : "read " + fs.readFileSync(p).length + " bytes";
    } catch (e) { out.reads[p] = "error: " + e.code; }
  }
  try { fs.writeFileSync(process.env.HOME + "/../data/probe", "x"); out.wrote = "ok"; } catch (e) { out.wrote = "error: " + e.code; }
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify(out) + "\n");
});
` + serveJS

type probe struct {
	User  string            `json:"user"`
	Reads map[string]string `json:"reads"`
	Wrote string            `json:"wrote"`
}

// TestAppIsolation (issue #17): app environments on one server are apart.
//   - shop/prod, shop/prod-eu and shop-prod/eu (names that joined with '-'
//     were one user and one set of units) each get their own user and
//     units; redeploying shop/prod stops none of the others' processes;
//   - a version received for a new app environment (other/prod), before
//     any deploy, lies in directories of mode 0750, root's;
//   - from within shop/prod's process, the other app environments' config
//     vars, app.json, bundles and /var/cloud's listing are out of reach
//     (relative paths from its working directory too), while it serves and
//     writes its own data.
func TestAppIsolation(t *testing.T) {
	srv, jepush, nodeVersion := nodeServer(t)
	major := strings.Split(nodeVersion, ".")[0]
	push := jepushTo(t, jepush, srv)
	appDir := func(app string) string {
		dir := t.TempDir()
		pkg, _ := json.Marshal(map[string]any{"name": app, "engines": map[string]string{"node": major + ".x"}})
		writeFiles(t, dir, map[string]string{
			"package.json": string(pkg), "server.js": probeServer, "Procfile": "web: node server.js\n",
			"jecloud.toml": fmt.Sprintf("app = %q\n", app),
		})
		return dir
	}
	journal := func() string {
		out, _ := srv.Exec(t.Context(), "sh", "-c", "journalctl -n 40 --no-pager -u 'jecloud-*'")
		return out
	}

	// A version received, not deployed: its directories are root's, 0750.
	other := appDir("other")
	bundle := filepath.Join(t.TempDir(), "b.tar.zst")
	out, err := exec.Command(jepush, "bundle", other, "-o", bundle).CombinedOutput()
	id := regexp.MustCompile(`\b[0-9a-f]{12}\b`).FindString(string(out))
	if err != nil || id == "" {
		t.Fatalf("jepush bundle: %v\n%s", err, out)
	}
	if err := srv.CopyIn(bundle, "/root/b.tar.zst"); err != nil {
		t.Fatal(err)
	}
	srv.MustExec("sh", "-c", "jeagent receive other prod "+id+" < /root/b.tar.zst")
	otherBundle := "/var/cloud/other/prod/source/versions/" + id + ".tar.zst"
	modes := srv.MustExec("stat", "-c", "%n %a %U %G", "/var/cloud/other", "/var/cloud/other/prod",
		"/var/cloud/other/prod/source", "/var/cloud/other/prod/source/versions")
	t.Logf("after jeagent receive:\n%s", modes)
	contains(t, "modes after receive", modes, "/var/cloud/other 755 root root",
		"/var/cloud/other/prod 750 root root", "/var/cloud/other/prod/source 750 root root",
		"/var/cloud/other/prod/source/versions 750 root root")

	envs := []struct{ app, env, user string }{
		{"shop", "prod", "jc-shop_prod"}, {"shop", "prod-eu", "jc-shop_prod-eu"}, {"shop-prod", "eu", "jc-shop-prod_eu"},
	}
	dirs := map[string]string{}
	for _, e := range envs {
		srv.MustExec("jeagent", "config:set", e.app, e.env, "SECRET=secret-of-"+e.app+"-"+e.env, "--no-restart")
		if dirs[e.app] == "" {
			dirs[e.app] = appDir(e.app)
		}
		if code, out := push(dirs[e.app], e.env); code != 0 {
			t.Fatalf("push %s/%s: exit %d\n%s\n%s", e.app, e.env, code, out, journal())
		}
	}
	port := func(app, env string) int { return webPort(t, srv, app, env) }
	get := func(app, env string, paths ...string) probe {
		q := url.Values{"p": paths}
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(fmt.Sprintf("http://%s:%d/?%s", srv.Addr, port(app, env), q.Encode()))
		if err != nil {
			t.Fatalf("GET %s/%s: %v\n%s", app, env, err, journal())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var p probe
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("%s/%s answered %s", app, env, b)
		}
		return p
	}
	mainPID := func(unit string) string {
		return strings.TrimSpace(srv.MustExec("systemctl", "show", "-p", "MainPID", "--value", unit))
	}
	pids := map[string]string{}
	for _, e := range envs {
		p := get(e.app, e.env)
		if p.User != e.user {
			t.Errorf("%s/%s runs as %s, want %s", e.app, e.env, p.User, e.user)
		}
		if p.Wrote != "ok" {
			t.Errorf("%s/%s cannot write its own data: %s", e.app, e.env, p.Wrote)
		}
		unit := webUnit(t, srv, e.app, e.env)
		if pids[unit] = mainPID(unit); pids[unit] == "0" {
			t.Errorf("%s is not running", unit)
		}
	}

	// From within shop/prod: the others' secrets, state and bundles.
	others := []string{
		"/var/cloud/shop/prod-eu/config.env", "/var/cloud/shop-prod/eu/config.env",
		"/var/cloud/shop/prod-eu/app.json", "/var/cloud/shop-prod/eu/source/versions",
		"/var/cloud/shop/prod-eu/source/versions/current/server.js",
		otherBundle, "/var/cloud/other/prod/app.json",
		"../../../../prod-eu/config.env", "../../../../../shop-prod/eu/config.env", "../../../../../other/prod/source/versions/" + id + ".tar.zst",
		"/var/cloud/sys/server.json",
	}
	p := get("shop", "prod", append(others, "/var/cloud", "/var/cloud/shop", "/var/cloud/shop/prod/data")...)
	b, _ := json.MarshalIndent(p, "", "  ")
	t.Logf("shop/prod's view:\n%s", b)
	for _, path := range others {
		if r := p.Reads[path]; !strings.HasPrefix(r, "error: ") {
			t.Errorf("shop/prod reads %s: %s", path, r)
		}
	}
	// Listings show only the way to its own files.
	if r := p.Reads["/var/cloud"]; strings.Contains(r, "other") || strings.Contains(r, "shop-prod") {
		t.Errorf("shop/prod lists /var/cloud: %s", r)
	}
	if r := p.Reads["/var/cloud/shop"]; strings.Contains(r, "prod-eu") {
		t.Errorf("shop/prod lists /var/cloud/shop: %s", r)
	}
	if r := p.Reads["/var/cloud/shop/prod/data"]; !strings.Contains(r, "probe") {
		t.Errorf("shop/prod cannot list its own data: %s", r)
	}

	// Redeploying shop/prod (a new release) leaves the others' processes be.
	writeFiles(t, dirs["shop"], map[string]string{"VERSION": "2\n"})
	if code, out := push(dirs["shop"], "prod"); code != 0 {
		t.Fatalf("redeploy shop/prod: exit %d\n%s", code, out)
	}
	for unit, pid := range pids {
		if strings.HasPrefix(unit, "jecloud-shop_prod_") {
			continue
		}
		if now := mainPID(unit); now != pid {
			t.Errorf("redeploying shop/prod restarted %s (pid %s, now %s)", unit, pid, now)
		}
	}
	for _, e := range envs[1:] {
		get(e.app, e.env)
	}
	t.Logf("summary: 3 app environments with joined names that clashed: 3 users, 3 unit sets; %d paths of others out of shop/prod's reach; a redeploy of shop/prod restarted none of the others; received-only directories 0750 root", len(others))
}
