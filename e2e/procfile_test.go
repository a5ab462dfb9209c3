//go:build e2e

package e2e_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/lab"
)

// pyServer answers with what its process sees: the app, a config var,
// the user it runs as.
const pyServer = `import http.server, os, pwd
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = "%s/%s greeting=%s user=%s\n" % (os.environ["JECLOUD_APP"], os.environ["JECLOUD_ENV"],
            os.environ.get("GREETING", ""), pwd.getpwuid(os.getuid()).pw_name)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body.encode())
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`

// TestProcfileApps: apps that are not Node.js apps, on a real server
// behind the real front door. A Python app with only a Procfile (web and
// a worker) runs under the app's user with $PORT and its config vars; an
// app whose runtime is a Debian package it declares (packages =
// ["busybox"], installed by apt from a local repository, the lab having no
// way out) runs busybox's httpd; a web process that keeps exiting fails
// the push and is never reported live; a bundle with only an index.html is
// a static site on the bare address, links left out; a bundle with
// nothing to run is reported "unpacked; no process types", never live.
func TestProcfileApps(t *testing.T) {
	lab.Require(t)
	jeagent, jepush := binaries(t)
	srv := lab.BootWith(t, 1, lab.Options{})[0]
	if err := srv.CopyIn(jeagent, "/usr/local/bin/jeagent"); err != nil {
		t.Fatal(err)
	}
	srv.MustExec("jeagent", "init")
	push := jepushTo(t, jepush, srv)
	get := func(host, path string) (int, string) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", srv.Addr.String()+":80")
			},
		}}
		resp, err := c.Get("http://" + host + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	bare := srv.Addr.String()

	// --- A static site: only an index.html (and a link, left out).
	site := t.TempDir()
	writeFiles(t, site, map[string]string{
		"index.html":     "<h1>static site</h1>\n",
		"css/style.css":  "h1 { color: teal }\n",
		"jecloud.toml":   "app = \"site\"\n",
		".well-known/ok": "ok\n",
	})
	if err := os.Symlink("index.html", filepath.Join(site, "home.html")); err != nil {
		t.Fatal(err)
	}
	code, out := push(site, "prod")
	t.Logf("static site push:\n%s", lastLines(out, 6))
	if code != 0 || !strings.Contains(out, "is live on") || !strings.Contains(out, "left out 1 entr") {
		t.Fatalf("jepush of a static site: exit %d\n%s", code, out)
	}
	for path, want := range map[string]string{"/": "<h1>static site</h1>", "/css/style.css": "teal", "/.well-known/ok": "ok"} {
		if c, body := get(bare, path); c != 200 || !strings.Contains(body, want) {
			t.Errorf("GET http://%s%s: %d %q, want 200 with %q", bare, path, c, body, want)
		}
	}
	for _, path := range []string{"/home.html", "/jecloud.toml", "/css/"} {
		if c, body := get(bare, path); c != 404 {
			t.Errorf("GET %s: %d %q, want 404 (a link, the config, a listing)", path, c, body)
		}
	}
	// The proxy's user reads the copy, and nothing of the app environment.
	if out, err := srv.Exec(t.Context(), "runuser", "-u", "caddy", "--", "cat", "/var/cloud/site/prod/source/versions/current/index.html"); err == nil {
		t.Errorf("the proxy's user reads the release itself: %s", out)
	}

	// --- A Python app with only a Procfile, a worker, a config var.
	py := t.TempDir()
	writeFiles(t, py, map[string]string{
		"app.py":       pyServer,
		"Procfile":     "web: python3 app.py\nworker: while true; do echo \"tick $GREETING\"; sleep 2; done\nrelease: echo never a unit\n",
		"jecloud.toml": "app = \"py\"\n",
	})
	if code, out := push("config:set", "prod", "GREETING=hi there", "--dir", py); code != 0 {
		t.Fatalf("config:set: exit %d\n%s", code, out)
	}
	srv.MustExec("python3", "-c", `import json
p = "/var/cloud/sys/server.json"
d = json.load(open(p))
d["proxy"] = {"base_domain": "apps.test"}
json.dump(d, open(p, "w"), indent=2)`)
	start := time.Now()
	code, out = push(py, "prod")
	t.Logf("python push (%.1fs):\n%s", time.Since(start).Seconds(), lastLines(out, 8))
	if code != 0 || !strings.Contains(out, "is live on") {
		t.Fatalf("jepush of a Python Procfile app: exit %d\n%s", code, out)
	}
	if c, body := get("py-prod.apps.test", "/"); c != 200 || strings.TrimSpace(body) != "py/prod greeting=hi there user=jc-py_prod" {
		t.Errorf("GET py-prod.apps.test: %d %q", c, body)
	}
	unit := webUnit(t, srv, "py", "prod")
	show := srv.MustExec("systemctl", "show", "-P", "User,ProtectSystem,NoNewPrivileges,ExecStart", unit)
	t.Logf("%s: %s", unit, strings.Join(strings.Fields(show), " "))
	contains(t, unit, show, "jc-py_prod", "strict", "/bin/sh")
	eventually(t, 15*time.Second, "the worker's ticks in its journal", func() bool {
		j, _ := srv.Exec(t.Context(), "journalctl", "-u", "jecloud-py_prod_worker@1.service", "--no-pager", "-o", "cat")
		return strings.Contains(j, "tick hi there")
	})
	if units, _ := srv.Exec(t.Context(), "sh", "-c", "ls /etc/systemd/system | grep -c jecloud-py_prod_release || true"); strings.TrimSpace(units) != "0" {
		t.Errorf("the release type became a unit: %s", units)
	}
	// jepush restart prod worker (#20 §4): the worker's process is new, the
	// web instance's is the same one, on the same unit.
	mainPID := func(u string) string {
		return strings.TrimSpace(srv.MustExec("systemctl", "show", "-P", "MainPID", u))
	}
	webPID, workerPID := mainPID(unit), mainPID("jecloud-py_prod_worker@1.service")
	if code, out := push("restart", "prod", "worker", "--dir", py); code != 0 || !strings.Contains(out, "restarting") {
		t.Errorf("jepush restart prod worker: exit %d\n%s", code, out)
	}
	if u := webUnit(t, srv, "py", "prod"); u != unit || mainPID(unit) != webPID {
		t.Errorf("restart worker touched web: %s pid %s, was %s pid %s", u, mainPID(u), unit, webPID)
	}
	if p := mainPID("jecloud-py_prod_worker@1.service"); p == workerPID || p == "0" {
		t.Errorf("restart worker: the worker's pid is %s, was %s", p, workerPID)
	}
	if code, out := push("restart", "prod", "wroker", "--dir", py); code == 0 || !strings.Contains(out, `did you mean "worker"?`) {
		t.Errorf("jepush restart prod wroker: exit %d\n%s", code, out)
	}
	// The static site keeps the bare address? No: two apps serve now, and
	// no default is named: the static site is reached by its name.
	if c, body := get("site-prod.apps.test", "/"); c != 200 || !strings.Contains(body, "static site") {
		t.Errorf("GET site-prod.apps.test: %d %q", c, body)
	}

	// --- Its runtime from a Debian package: busybox, from a local repository.
	repo := aptRepo(t, srv, "busybox")
	bb := t.TempDir()
	writeFiles(t, bb, map[string]string{
		"public/index.html": "busybox httpd here\n",
		"Procfile":          "web: busybox httpd -f -p 127.0.0.1:$PORT -h public\n",
		"jecloud.toml":      "app = \"bb\"\npackages = [\"busybox\"]\n",
	})
	if out, _ := srv.Exec(t.Context(), "sh", "-c", "command -v busybox || echo none"); strings.TrimSpace(out) != "none" {
		t.Fatalf("busybox is in the image already (%s): the test would not install it", out)
	}
	code, out = push(bb, "prod")
	t.Logf("busybox push (repository %s):\n%s", repo, lastLines(out, 8))
	if code != 0 || !strings.Contains(out, "is live on") {
		t.Fatalf("jepush of an app whose runtime is a declared package: exit %d\n%s", code, out)
	}
	if v, err := srv.Exec(t.Context(), "dpkg-query", "-W", "-f", "${Status} ${Version}", "busybox"); err != nil || !strings.HasPrefix(v, "install ok installed") {
		t.Errorf("busybox after the push: %q %v", v, err)
	} else {
		t.Logf("busybox installed by the packages hook: %s", v)
	}
	if c, body := get("bb-prod.apps.test", "/"); c != 200 || !strings.Contains(body, "busybox httpd here") {
		t.Errorf("GET bb-prod.apps.test: %d %q", c, body)
	}

	// --- A web process that keeps exiting: the push fails, not live.
	bad := t.TempDir()
	writeFiles(t, bad, map[string]string{
		"Procfile":     "web: python3 -c 'raise SystemExit(3)'\n",
		"jecloud.toml": "app = \"py\"\n",
	})
	live := readApp(t, srv, "py", "prod").CurrentVersion
	code, out = push(bad, "prod")
	t.Logf("push of a crashing web process:\n%s", lastLines(out, 6))
	if code == 0 || strings.Contains(out, "is live") || !strings.Contains(out, "keeps exiting") {
		t.Errorf("push of a web process that exits: exit %d\n%s", code, out)
	}
	if now := readApp(t, srv, "py", "prod").CurrentVersion; now != live {
		t.Errorf("current_version %s after a failed push, want %s", now, live)
	}
	if c, body := get("py-prod.apps.test", "/"); c != 200 || !strings.Contains(body, "greeting=hi there") {
		t.Errorf("after the failed push, py-prod.apps.test: %d %q", c, body)
	}

	// --- Nothing to run: unpacked, and said so.
	empty := t.TempDir()
	writeFiles(t, empty, map[string]string{"README.md": "notes\n", "jecloud.toml": "app = \"notes\"\n"})
	code, out = push(empty, "prod")
	t.Logf("push of a bundle with nothing to run:\n%s", lastLines(out, 3))
	if code != 0 || strings.Contains(out, "is live") || !strings.Contains(out, "is unpacked on ") || !strings.Contains(out, "; no process types") {
		t.Errorf("push of a bundle with nothing to run: exit %d\n%s", code, out)
	}
	status := srv.MustExec("jeagent", "status", "notes", "prod")
	if !strings.Contains(status, "unpacked:") || strings.Contains(status, "live:") {
		t.Errorf("jeagent status of a bundle with nothing to run:\n%s", status)
	}
	if status := srv.MustExec("jeagent", "status", "py", "prod"); !strings.Contains(status, "live:") {
		t.Errorf("jeagent status of the Python app:\n%s", status)
	}
	t.Logf("summary: a Python Procfile app (web behind the front door, a worker, a config var, user jc-py_prod), busybox httpd from packages = [\"busybox\"] installed by apt, a static site on the bare address and by name (a link left out), a crashing web refused before the switch, and a bundle with nothing to run reported unpacked")
}

// aptRepo makes a local apt repository on srv holding the Debian
// packages names (downloaded on this host, kept in the lab's cache), and
// makes it srv's only source: the packages hook's apt-get reaches it.
func aptRepo(t *testing.T, srv *lab.Server, names ...string) string {
	t.Helper()
	debs := filepath.Join(lab.CacheDir(), "debs")
	for _, name := range names {
		if m, _ := filepath.Glob(filepath.Join(debs, name+"_*.deb")); len(m) > 0 {
			continue
		}
		cmd := exec.Command("apt-get", "download", name)
		cmd.Dir = debs
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("apt-get download %s on this host: %v\n%s", name, err, out)
		}
	}
	const dir = "/srv/jecloud-test-repo"
	srv.MustExec("mkdir", "-p", dir)
	for _, name := range names {
		m, _ := filepath.Glob(filepath.Join(debs, name+"_*.deb"))
		if err := srv.CopyIn(m[0], dir+"/"+filepath.Base(m[0])); err != nil {
			t.Fatal(err)
		}
	}
	srv.MustExec("sh", "-c", `cd `+dir+` && for f in *.deb; do dpkg-deb -f "$f"; echo "Filename: ./$f"; echo "Size: $(stat -c %s "$f")"; echo "SHA256: $(sha256sum "$f" | cut -d' ' -f1)"; echo; done > Packages
echo "deb [trusted=yes] file:`+dir+` ./" > /etc/apt/sources.list
rm -f /etc/apt/sources.list.d/*`)
	return dir
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
