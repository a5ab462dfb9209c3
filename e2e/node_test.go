//go:build e2e

package e2e_test

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/backup/s3test"
	"github.com/jecloud/jecloud/internal/lab"
)

// serveJS ends the test apps: it listens on the socket systemd hands over
// and drains on SIGTERM, as docs/node.md's contract says (checked by
// TestNodeDrain on examples/hello, which does the same).
const serveJS = `if (process.env.LISTEN_FDS) server.listen({ fd: 3 }); else server.listen(process.env.PORT);
const waiting = new Set();
server.on("connection", (s) => { waiting.add(s); s.on("close", () => waiting.delete(s)); });
server.on("request", (req) => waiting.delete(req.socket));
process.on("SIGTERM", () => {
  server.prependListener("request", (req, res) => res.setHeader("connection", "close"));
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => waiting.forEach((s) => s.destroy()), 1000).unref();
});
`

// The test app: Node.js without dependencies, following the zero-downtime
// contract (docs/node.md), counting visits in its Redis through REDIS_URL.
const appServer = `const http = require("http");
const net = require("net");
const version = process.env.JECLOUD_VERSION;
if (process.env.BROKEN) { console.error("BROKEN is set: exiting"); process.exit(3); }
function incr(cb) {
  const u = new URL(process.env.REDIS_URL);
  const c = net.connect(+u.port, u.hostname);
  let buf = "";
  c.on("error", (e) => cb(e));
  c.on("data", (d) => { buf += d; const m = buf.match(/:(\d+)\r\n/); if (m) { c.end(); cb(null, m[1]); } });
  c.write("AUTH " + decodeURIComponent(u.password) + "\r\nINCR visits\r\n");
}
const server = http.createServer((req, res) => {
  if (req.url === "/healthz") { res.end("ok\n"); return; }
  if (req.url === "/version") { res.end(version + "\n"); return; }
  incr((err, n) => {
    if (err) { res.writeHead(500); res.end(String(err)); return; }
    res.end("hello " + version + " visits " + n + " user " + require("os").userInfo().username + " greeting " + (process.env.GREETING || "") + "\n");
  });
});
` + serveJS

// workerJS is a worker that needs 4 s to finish its job after SIGTERM.
const workerJS = `const fs = require("fs");
setInterval(() => {}, 1000);
process.on("SIGTERM", () => {
  setTimeout(() => {
    fs.appendFileSync("/var/cloud/jobs/prod/data/worker.log", "worker " + process.pid + " finished its job\n");
    process.exit(0);
  }, 4000);
});
`

// TestNodeAppWithRedis deploys a Node.js app with Redis and MongoDB (the
// FerretDB stand-in for mongod) to a real Debian server under systemd,
// then: it is served by its own user with REDIS_URL and MONGO_URL;
// a redeploy under load fails no request; a broken release rolls back by
// itself; config vars reach the app; the app comes back after SIGKILL and
// after a reboot of the server, with Redis's data.
func TestNodeAppWithRedis(t *testing.T) {
	lab.Require(t)
	jeagent, jepush := binaries(t)
	srv := lab.BootWith(t, 1, lab.Options{Persistent: true})[0] // it reboots at the end
	if err := srv.CopyIn(jeagent, "/usr/local/bin/jeagent"); err != nil {
		t.Fatal(err)
	}
	srv.MustExec("jeagent", "init")
	nodeVersion := installMirror(t, srv)
	for _, tool := range []string{"mongostandin", "mongoprobe"} {
		if err := srv.CopyIn(buildTool(t, tool), "/usr/local/bin/"+tool); err != nil {
			t.Fatal(err)
		}
	}
	// Backups go to a real S3 server (versitygw) on the host's end of the link.
	s3 := s3test.Start(t, srv.HostAddr.String())
	srv.WriteFile("/var/cloud/sys/server.json", []byte(`{"node": {"mirror": "/srv/node-mirror"}, `+
		`"mongodb": {"server": "/usr/local/bin/mongostandin"}, `+
		`"backups": {"bucket": "`+s3.Bucket+`", "endpoint": "`+s3.Endpoint+`", "schedule": "daily", "keep": 3}}`+"\n"), 0o640)
	srv.WriteFile("/var/cloud/sys/backup.env", []byte(s3.Env()), 0o600)

	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"package.json": `{"name": "counter", "engines": {"node": "` + strings.Split(nodeVersion, ".")[0] + `.x"}, "scripts": {"start": "node server.js"}}`,
		"server.js":    appServer,
		"Procfile":     "web: node server.js\n",
		"jecloud.toml": "app = \"counter\"\npackages = [\"procps\"]\n[services]\nredis = \"7\"\nmongodb = \"7.0\"\n[web]\nhealth = \"/healthz\"\n",
	})
	push := jepushTo(t, jepush, srv)
	url := "http://" + srv.Addr.String() + "/" // the front door: the only app on the server
	get := func(path ...string) (string, error) {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(url + strings.Join(path, ""))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return string(b), fmt.Errorf("%s: %s", resp.Status, b)
		}
		return string(b), nil
	}

	start := time.Now()
	if code, out := push(dir, "prod"); code != 0 {
		t.Fatalf("first push: exit %d\n%s\n%s", code, out, srv.MustExec("journalctl", "-n", "50", "--no-pager"))
	}
	t.Logf("first push (Node.js install, user, Redis, units): %s", time.Since(start).Round(time.Millisecond))
	v1 := readApp(t, srv, "counter", "prod").CurrentVersion
	body, err := get()
	if err != nil {
		out, _ := srv.Exec(t.Context(), "sh", "-c", "systemctl status --no-pager 'jecloud-*'; journalctl -n 40 --no-pager -u 'jecloud-*'")
		t.Fatalf("%v\n%s", err, out)
	}
	contains(t, "GET /", body, "hello "+v1, "visits 1", "user jc-counter_prod")
	if b2, _ := get(); !strings.Contains(b2, "visits 2") {
		t.Errorf("Redis does not keep the count: %q", b2)
	}
	// Sandbox and secrets on the server.
	unit := srv.MustExec("systemctl", "cat", webUnit(t, srv, "counter", "prod"))
	contains(t, "web unit", unit, "User=jc-counter_prod", "ProtectSystem=strict", "NoNewPrivileges=yes")
	for _, u := range []string{webUnit(t, srv, "counter", "prod"), "jecloud-counter_prod_redis.service", "jecloud-counter_prod_mongodb.service"} {
		out, _ := srv.Exec(t.Context(), "systemd-analyze", "security", "--no-pager", u)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		t.Logf("systemd-analyze security %s: %s", u, lines[len(lines)-1])
	}
	if strings.Contains(unit, "REDIS_URL") || strings.Contains(unit, "MONGO_URL") {
		t.Error("REDIS_URL or MONGO_URL (with its password) is in a world-readable unit file")
	}
	// MongoDB: the app's user reaches its database through MONGO_URL; a
	// client without the password reads nothing.
	mongoURL := serviceVar(t, srv, "/var/cloud/counter/prod/services.env", "MONGO_URL")
	contains(t, "MONGO_URL", mongoURL, "mongodb://app:", "@127.0.0.1:", "/counter?authSource=admin")
	probe := func(what, url string) (string, error) {
		return srv.Exec(t.Context(), "runuser", "-u", "jc-counter_prod", "--", "mongoprobe", what, url)
	}
	if out, err := probe("write", mongoURL); err != nil {
		t.Fatalf("mongoprobe write: %v\n%s", err, out)
	}
	mongoData, err := probe("digest", mongoURL)
	if err != nil || !strings.Contains(mongoData, "1000 documents") {
		t.Fatalf("mongoprobe digest: %v\n%s", err, mongoData)
	}
	noPassword := "mongodb://127.0.0.1:" + strings.Split(strings.Split(mongoURL, "@127.0.0.1:")[1], "/")[0] + "/counter"
	if out, err := probe("digest", noPassword); err == nil {
		t.Errorf("MongoDB answers without a password: %s", out)
	}
	contains(t, "services.env", srv.MustExec("stat", "-c", "%a %U %G", "/var/cloud/counter/prod/services.env"), "640 root jc-counter_prod")
	contains(t, "node version", srv.MustExec("cat", "/var/cloud/counter/prod/source/versions/"+v1+"/.jecloud/node-version"), nodeVersion)
	if out, err := srv.Exec(t.Context(), "runuser", "-u", "jc-counter_prod", "--", "cat", "/var/cloud/sys/server.json"); err == nil {
		t.Errorf("the app's user can read the agent's state: %s", out)
	}

	// A redeploy under load (4 clients in a loop on /version, which does not
	// touch Redis): no request fails.
	writeFiles(t, dir, map[string]string{"version.txt": "2"})
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				if _, err := get("version"); err != nil {
					failed.Add(1)
					t.Logf("request failed at %s: %v", time.Now().UTC().Format("15:04:05.000"), err)
				} else {
					ok.Add(1)
				}
				mu.Lock()
				lat = append(lat, time.Since(t0))
				mu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	code, out := push(dir, "prod")
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("second push: exit %d\n%s", code, out)
	}
	v2 := readApp(t, srv, "counter", "prod").CurrentVersion

	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("redeploy under load: %d requests ok, %d failed; p50 %s, p99 %s, max %s",
		ok.Load(), failed.Load(), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
	if failed.Load() != 0 {
		out, _ := srv.Exec(t.Context(), "journalctl", "--no-pager", "-o", "short-precise", "-n", "80", "-u", "jecloud-counter_prod_*", "-u", "jeagent-rollforward.service")
		t.Errorf("%d requests failed during the redeploy; the journal:\n%s", failed.Load(), out)
	}
	if body, _ := get(); !strings.Contains(body, "hello "+v2) {
		t.Errorf("after the redeploy: %q", body)
	}

	// A broken release: the deploy fails, rolls back by itself, v2 serves on.
	writeFiles(t, dir, map[string]string{"server.js": "process.env.BROKEN = '1';\n" + appServer})
	code, out = push(dir, "prod")
	if code == 0 || !strings.Contains(out, "rolled back to "+v2) {
		t.Fatalf("broken push: exit %d\n%s", code, out)
	}
	if body, err := get(); err != nil || !strings.Contains(body, "hello "+v2) {
		t.Errorf("after the rollback: %q %v", body, err)
	}
	if a := readApp(t, srv, "counter", "prod"); a.CurrentVersion != v2 {
		t.Errorf("current_version %s after the rollback, want %s", a.CurrentVersion, v2)
	}

	// Config vars reach the app after config:set's restart.
	writeFiles(t, dir, map[string]string{"server.js": appServer})
	code, out = push("config:set", "prod", "GREETING=bonjour", "--dir", dir)
	if code != 0 {
		t.Fatalf("config:set: exit %d\n%s", code, out)
	}
	if body, _ := get(); !strings.Contains(body, "greeting bonjour") {
		t.Errorf("config var not seen by the app: %q", body)
	}

	checkBackups(t, srv, get, probe, mongoURL, mongoData)

	// Killed by systemd's hand or by a crash: it comes back.
	srv.MustExec("systemctl", "kill", "--signal=SIGKILL", webUnit(t, srv, "counter", "prod"))
	eventually(t, 20*time.Second, "the app is back after SIGKILL", func() bool {
		body, err := get()
		return err == nil && strings.Contains(body, "hello "+v2)
	})
	// jepush ps shows it: web.1 running again, restarted once by systemd.
	code, out = push("ps", "prod", "--dir", dir, "--json")
	var ps struct {
		Hosts []struct {
			Processes []struct {
				Type, Instance, State, Sub string
				Restarts                   int
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &ps); code != 0 || err != nil || len(ps.Hosts) != 1 {
		t.Fatalf("jepush ps --json: exit %d, %v\n%s", code, err, out)
	}
	seen := map[string]bool{}
	for _, p := range ps.Hosts[0].Processes {
		seen[p.Type+"."+p.Instance] = true
		if p.Type == "web" && (p.State != "active" || p.Restarts < 1) {
			t.Errorf("web after a SIGKILL: %+v, want active with a restart counted", p)
		}
	}
	if !seen["web."+strings.TrimSuffix(strings.Split(webUnit(t, srv, "counter", "prod"), "@")[1], ".service")] || !seen["redis."] || !seen["mongodb."] {
		t.Errorf("jepush ps lists %v", seen)
	}
	_, out = push("ps", "prod", "--dir", dir)
	t.Logf("jepush ps prod:\n%s", out)

	// A reboot of the server: the app and its Redis come back by themselves,
	// with Redis's data.
	before, _ := get()
	rebootAt := time.Now()
	if err := srv.Reboot(); err != nil {
		t.Fatal(err)
	}
	var after string
	eventually(t, 60*time.Second, "the app to serve again after the reboot", func() bool {
		body, err := get()
		after = body
		return err == nil && strings.Contains(body, "hello "+v2)
	})
	t.Logf("serving again %.1fs after the reboot began (before: %q, after: %q)", time.Since(rebootAt).Seconds(),
		strings.TrimSpace(before), strings.TrimSpace(after))
	if visits(before) <= 0 || visits(after) != visits(before)+1 {
		t.Errorf("Redis lost its data in the reboot: before %q, after %q", before, after)
	}
	var mongoAfter string
	eventually(t, 60*time.Second, "MongoDB to answer after the reboot", func() bool {
		out, err := probe("digest", mongoURL)
		mongoAfter = out
		return err == nil
	})
	if mongoAfter != mongoData {
		t.Errorf("MongoDB's data changed in the reboot: before %q, after %q", mongoData, mongoAfter)
	}
	for _, timer := range []string{"jecloud-counter_prod_redis-backup.timer", "jecloud-counter_prod_mongodb-backup.timer"} {
		if out, err := srv.Exec(t.Context(), "systemctl", "is-active", timer); err != nil {
			t.Errorf("%s after the reboot: %v %s", timer, err, out)
		}
	}
}

// checkBackups backs Redis and MongoDB up through their timers' units (as
// the schedule would), changes the data, restores both with `jeagent
// restore` and checks the data is what was backed up.
func checkBackups(t *testing.T, srv *lab.Server, get func(...string) (string, error),
	probe func(what, url string) (string, error), mongoURL, mongoData string) {
	t.Helper()
	timers := srv.MustExec("systemctl", "list-timers", "--all", "--no-pager", "jecloud-*")
	contains(t, "list-timers", timers, "jecloud-counter_prod_redis-backup.timer", "jecloud-counter_prod_mongodb-backup.timer")
	before, err := get()
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"redis", "mongodb"} {
		start := time.Now()
		unit := "jecloud-counter_prod_" + svc + "-backup.service"
		if out, err := srv.Exec(t.Context(), "systemctl", "start", unit); err != nil {
			t.Fatalf("systemctl start %s: %v %s\n%s", unit, err, out, srv.MustExec("journalctl", "-n", "30", "--no-pager", "-u", unit))
		}
		t.Logf("scheduled backup of %s through %s: %s", svc, unit, time.Since(start).Round(time.Millisecond))
	}
	var st struct {
		Apps []struct {
			Backups map[string]struct {
				LastSuccess time.Time `json:"last_success"`
				Size        int64     `json:"size"`
				SHA256      string    `json:"sha256"`
				Stale       bool      `json:"stale"`
				LastError   string    `json:"last_error"`
			} `json:"backups"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(srv.MustExec("jeagent", "status", "counter", "prod", "--json")), &st); err != nil || len(st.Apps) != 1 {
		t.Fatalf("status --json: %v", err)
	}
	for _, svc := range []string{"redis", "mongodb"} {
		b, ok := st.Apps[0].Backups[svc]
		if !ok || b.LastSuccess.IsZero() || b.Stale || b.Size == 0 || len(b.SHA256) != 64 || b.LastError != "" {
			t.Errorf("status of the %s backup: %+v", svc, b)
		}
		t.Logf("%s backup: %d bytes compressed, sha256 %s", svc, b.Size, b.SHA256[:12])
	}
	contains(t, "status", srv.MustExec("jeagent", "status", "counter", "prod"), "backup:     redis", "backup:     mongodb")

	// The data changes after the backup...
	for range 5 {
		get()
	}
	if out, err := probe("change", mongoURL); err != nil {
		t.Fatalf("mongoprobe change: %v %s", err, out)
	}
	if changed, _ := probe("digest", mongoURL); changed == mongoData {
		t.Fatal("mongoprobe change changed nothing")
	}
	// ...and the restores bring it back.
	for _, svc := range []string{"redis", "mongodb"} {
		start := time.Now()
		out, err := srv.Exec(t.Context(), "jeagent", "restore", "counter", "prod", svc)
		if err != nil {
			t.Fatalf("jeagent restore %s: %v\n%s", svc, err, out)
		}
		contains(t, "restore "+svc, out, "verified", "restored counter/prod "+svc)
		t.Logf("restore of %s: %s", svc, time.Since(start).Round(time.Millisecond))
	}
	if got, _ := probe("digest", mongoURL); got != mongoData {
		t.Errorf("MongoDB after the restore: %q, want %q", got, mongoData)
	}
	var after string
	eventually(t, 20*time.Second, "the app to count again after the Redis restore", func() bool {
		body, err := get()
		after = body
		return err == nil
	})
	if visits(after) != visits(before)+1 {
		t.Errorf("Redis after the restore: %q; the backup was taken after %q", after, before)
	}
	list := srv.MustExec("jeagent", "backups", "counter", "prod")
	contains(t, "backups", list, "redis ", "mongodb ")
}

// serviceVar reads one variable of an EnvironmentFile on the server.
func serviceVar(t *testing.T, srv *lab.Server, path, key string) string {
	t.Helper()
	for _, line := range strings.Split(srv.MustExec("cat", path), "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	t.Fatalf("%s has no %s", path, key)
	return ""
}

// buildTool builds one of the tests' own programs for the servers:
// mongostandin (its own module) or mongoprobe.
func buildTool(t *testing.T, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = filepath.Join(repoRoot(), "e2e", name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, b)
	}
	return out
}

// visits reads the visit count in the test app's answer.
func visits(body string) int {
	var n int
	if i := strings.Index(body, "visits "); i >= 0 {
		fmt.Sscanf(body[i+len("visits "):], "%d", &n)
	}
	return n
}

// nodeServer boots a lab server with jeagent installed and initialised and
// a Node.js mirror (installMirror), for a test that pushes a Node.js app
// with jepush; it returns the server, jepush and the mirror's Node.js version.
func nodeServer(t testing.TB) (srv *lab.Server, jepush, nodeVersion string) {
	t.Helper()
	lab.Require(t)
	jeagent, jepush := binaries(t)
	srv = lab.Boot(t, 1)[0]
	if err := srv.CopyIn(jeagent, "/usr/local/bin/jeagent"); err != nil {
		t.Fatal(err)
	}
	srv.MustExec("jeagent", "init")
	return srv, jepush, installMirror(t, srv)
}

// installMirror builds a Node.js mirror from this machine's node (laid out
// like the official one: index.json, vX/SHASUMS256.txt, vX/node-vX-linux-x64.tar.gz),
// puts it in the server at /srv/node-mirror and points server.json at it.
// It returns the version.
func installMirror(t testing.TB, srv *lab.Server) string {
	t.Helper()
	m := buildMirror(t)
	if err := m.install(srv); err != nil {
		t.Fatal(err)
	}
	return m.version
}

// nodeMirror is a Node.js release mirror (as nodejs.org/dist lays it out)
// made from the host's node, for servers without internet.
type nodeMirror struct{ version, name, tgz, sum string }

func buildMirror(t testing.TB) nodeMirror {
	t.Helper()
	out, err := exec.Command("node", "--version").Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	node, _ := exec.LookPath("node")
	node, _ = filepath.EvalSymlinks(node)
	npmDir := filepath.Join(filepath.Dir(filepath.Dir(node)), "lib", "node_modules", "npm")
	name := "node-v" + v + "-linux-x64"
	tmp := t.TempDir()
	tgz := filepath.Join(tmp, name+".tar.gz")
	f, _ := os.Create(tgz)
	h := sha256.New()
	zw := gzip.NewWriter(io.MultiWriter(f, h))
	tw := tar.NewWriter(zw)
	add := func(hdr *tar.Header, src string) {
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if src != "" {
			r, _ := os.Open(src)
			io.Copy(tw, r)
			r.Close()
		}
	}
	fi, _ := os.Stat(node)
	add(&tar.Header{Name: name + "/bin/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: name + "/bin/node", Typeflag: tar.TypeReg, Mode: 0o755, Size: fi.Size()}, node)
	add(&tar.Header{Name: name + "/bin/npm", Typeflag: tar.TypeSymlink, Linkname: "../lib/node_modules/npm/bin/npm-cli.js"}, "")
	filepath.WalkDir(npmDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(filepath.Dir(filepath.Dir(filepath.Dir(npmDir))), p) // lib/node_modules/npm/...
		info, _ := d.Info()
		hdr := &tar.Header{Name: name + "/" + filepath.ToSlash(rel), Mode: int64(info.Mode().Perm())}
		switch {
		case d.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
			add(hdr, "")
		case info.Mode()&fs.ModeSymlink != 0:
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname, _ = os.Readlink(p)
			add(hdr, "")
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, info.Size()
			add(hdr, p)
		}
		return nil
	})
	tw.Close()
	zw.Close()
	f.Close()
	sum := hex.EncodeToString(h.Sum(nil))
	return nodeMirror{version: v, name: name, tgz: tgz, sum: sum}
}

// install copies the mirror to /srv/node-mirror on srv and points the
// agent's Node.js hook at it.
func (m nodeMirror) install(srv *lab.Server) error {
	dir := "/srv/node-mirror/v" + m.version + "/"
	if err := srv.CopyIn(m.tgz, dir+m.name+".tar.gz"); err != nil {
		return err
	}
	for path, content := range map[string]string{
		dir + "SHASUMS256.txt":        m.sum + "  " + m.name + ".tar.gz\n",
		"/srv/node-mirror/index.json": `[{"version":"v` + m.version + `","lts":"Iron"}]`,
	} {
		if err := srv.WriteFile(path, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return srv.WriteFile("/var/cloud/sys/server.json", []byte(`{"node": {"mirror": "/srv/node-mirror"}}`+"\n"), 0o640)
}

// TestWorkerGrace: a deploy stops the old worker with SIGTERM and gives it
// its grace ([grace] worker = "8s") to finish the job at hand (4 s here)
// before the new version's worker starts; the default would be 30 s.
func TestWorkerGrace(t *testing.T) {
	srv, jepush, nodeVersion := nodeServer(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"package.json": `{"name": "jobs", "engines": {"node": "` + strings.Split(nodeVersion, ".")[0] + `.x"}}`,
		"worker.js":    workerJS,
		"Procfile":     "worker: node worker.js\n",
		"jecloud.toml": "app = \"jobs\"\n[grace]\nworker = \"8s\"\n",
	})
	jepushOut := jepushTo(t, jepush, srv)
	push := func() string {
		code, out := jepushOut(dir, "prod")
		if code != 0 {
			t.Fatalf("jepush: exit %d\n%s", code, out)
		}
		return out
	}
	push()
	contains(t, "the worker's stop timeout", srv.MustExec("systemctl", "show", "-p", "TimeoutStopUSec", "jecloud-jobs_prod_worker@1.service"), "TimeoutStopUSec=8s")
	writeFiles(t, dir, map[string]string{"version.txt": "2"})
	start := time.Now()
	push()
	log, _ := srv.ReadFile("/var/cloud/jobs/prod/data/worker.log")
	if !strings.Contains(string(log), "finished its job") {
		t.Errorf("the old worker was not let finish its job after SIGTERM: %q\n%s", log,
			srv.MustExec("journalctl", "--no-pager", "-n", "30", "-u", "jecloud-jobs_prod_worker@1.service"))
	}
	t.Logf("summary: redeploy with a worker that needs 4 s after SIGTERM ([grace] worker = \"8s\"): %s; its job finished: %v",
		time.Since(start).Round(100*time.Millisecond), strings.Contains(string(log), "finished its job"))
}
