//go:build e2e

package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/lab"
)

// TestFrontDoorDeploy: redeploys under load through the front door (Caddy on
// port 80) of three apps that know nothing of JeCloud's zero-downtime
// contract: a stock Heroku-style app (binds $PORT, no SIGTERM handler), an
// app whose every request takes 2 s, and examples/hello. Each redeploy runs
// under a load of at least 10,000 requests; none may fail. Then a release
// that fails its health check receives no request, the deployment fails
// with the reason, and the old release keeps serving on the same instances.
func TestFrontDoorDeploy(t *testing.T) {
	srv, jepush, nodeVersion := nodeServer(t)
	major := strings.Split(nodeVersion, ".")[0]
	push := jepushTo(t, jepush, srv)
	// Each app by its default name under a base domain.
	srv.MustExec("python3", "-c", `import json
p = "/var/cloud/sys/server.json"
d = json.load(open(p))
d["proxy"] = {"base_domain": "apps.example.net"}
json.dump(d, open(p, "w"), indent=2)`)

	stock := `const v = require("fs").readFileSync("version.txt", "utf8").trim();
require("http").createServer((q, s) => s.end("release " + v + "\n")).listen(process.env.PORT);
`
	slow := `const v = require("fs").readFileSync("version.txt", "utf8").trim();
require("http").createServer((q, s) => setTimeout(() => s.end("release " + v + "\n"), 2000)).listen(process.env.PORT);
`
	hello := map[string]string{}
	for _, f := range []string{"server.js", "Procfile", "package-lock.json", "package.json"} {
		b, err := os.ReadFile(filepath.Join(repoRoot(), "examples", "hello", f))
		if err != nil {
			t.Fatal(err)
		}
		hello[f] = string(b)
	}
	hello["package.json"] = strings.Replace(hello["package.json"], `"node": "20.x"`, `"node": "`+major+`.x"`, 1)
	hello["jecloud.toml"] = "app = \"hello\"\n\n[web]\nhealth = \"/healthz\"\n"

	apps := []struct {
		name        string
		files       map[string]string
		concurrency int
	}{
		{"stock", map[string]string{"server.js": stock, "Procfile": "web: node server.js\n", "jecloud.toml": "app = \"stock\"\n"}, 8},
		{"slow", map[string]string{"server.js": slow, "Procfile": "web: node server.js\n", "jecloud.toml": "app = \"slow\"\n"}, 250},
		{"hello", hello, 8},
	}
	dirs := map[string]string{}
	for _, a := range apps {
		dir := t.TempDir()
		dirs[a.name] = dir
		files := map[string]string{"version.txt": "1\n"}
		for k, v := range a.files {
			files[k] = v
		}
		if _, ok := files["package.json"]; !ok {
			pkg, _ := json.Marshal(map[string]any{"name": a.name, "engines": map[string]string{"node": major + ".x"}})
			files["package.json"] = string(pkg)
		}
		writeFiles(t, dir, files)
		if code, out := push(dir, "prod"); code != 0 {
			t.Fatalf("jepush %s: exit %d\n%s", a.name, code, out)
		} else if strings.Contains(out, "port 5000") || !strings.Contains(out, "front door") {
			t.Errorf("jepush %s does not say the front door serves it:\n%s", a.name, out)
		}
	}

	for _, a := range apps {
		host := a.name + "-prod.apps.example.net"
		writeFiles(t, dirs[a.name], map[string]string{"version.txt": "2\n"})
		var code int
		var out string
		r := underLoad(t, srv.Addr.String()+":80", host, a.concurrency, 10000, func() { code, out = push(dirs[a.name], "prod") })
		if code != 0 {
			t.Fatalf("redeploy of %s: exit %d\n%s", a.name, code, out)
		}
		t.Logf("redeploy of %s under load through the front door (%d clients): %s", a.name, a.concurrency, r)
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "drained in") || strings.Contains(l, "still in flight") {
				t.Logf("  push: %s", strings.TrimSpace(l))
			}
		}
		if r.failed != 0 || r.ok < 10000 {
			j, _ := srv.Exec(t.Context(), "journalctl", "--no-pager", "-o", "short-precise", "-n", "60", "-u", "jecloud-"+a.name+"_prod_*", "-u", "jecloud-haproxy.service")
			t.Errorf("%s: %d ok, %d failed: %v\n%s", a.name, r.ok, r.failed, r.errors, j)
		}
		if a.name != "hello" && (r.bodies["release 1"] == 0 || r.bodies["release 2"] == 0) {
			t.Errorf("%s: answers seen %v; want both releases", a.name, r.bodies)
		}
	}

	// A release that never answers healthily: under load, none of its
	// answers reach a client, the deployment fails before the switch
	// with the reason, and release 2 goes on serving from the same
	// instances (the engine's rollback restarts nothing).
	before := srv.MustExec("cat", "/var/cloud/stock/prod/upstreams.json")
	writeFiles(t, dirs["stock"], map[string]string{"version.txt": "3\n", "server.js": `require("http").createServer((q, s) => { s.statusCode = 503; s.end("release bad\n"); }).listen(process.env.PORT);
`})
	var code int
	var out string
	r := underLoad(t, srv.Addr.String()+":80", "stock-prod.apps.example.net", 8, 10000, func() { code, out = push(dirs["stock"], "prod") })
	t.Logf("a release that fails its health check, pushed under load: %s", r)
	if code == 0 || !strings.Contains(out, "received no request") || !strings.Contains(out, "rolled back to") {
		t.Errorf("the bad push: exit %d\n%s", code, out)
	}
	if r.failed != 0 || r.bodies["release bad"] != 0 || r.bodies["release 2"] != r.ok {
		t.Errorf("during the bad push: %d ok, %d failed, answers %v", r.ok, r.failed, r.bodies)
	}
	if after := srv.MustExec("cat", "/var/cloud/stock/prod/upstreams.json"); after != before {
		t.Errorf("upstreams.json changed: before %s after %s", before, after)
	}
	units := srv.MustExec("sh", "-c", "systemctl list-units --no-legend --plain 'jecloud-stock_prod_web@*' | awk '{print $1}'")
	if n := len(strings.Fields(units)); n != 1 {
		t.Errorf("web instances of stock/prod after the failed push: %q", units)
	}
}

// loadResult is what a load run saw.
type loadResult struct {
	ok, failed int64
	bodies     map[string]int64
	errors     []string
	p50, p99   time.Duration
	max        time.Duration
	took       time.Duration
}

func (r loadResult) String() string {
	return fmt.Sprintf("%d requests ok, %d failed in %s; p50 %s, p99 %s, max %s; answers %v",
		r.ok, r.failed, r.took.Round(time.Millisecond), r.p50.Round(100*time.Microsecond), r.p99.Round(100*time.Microsecond), r.max.Round(time.Millisecond), r.bodies)
}

// underLoad sends GET / with the given Host header to addr from
// concurrency clients (keep-alive connections) while during runs, and
// until at least min requests have been answered.
func underLoad(t *testing.T, addr, host string, concurrency int, min int64, during func()) loadResult {
	var ok, failed atomic.Int64
	var mu sync.Mutex
	res := loadResult{bodies: map[string]int64{}}
	var lat []time.Duration
	stop := make(chan struct{})
	var wg sync.WaitGroup
	tr := &http.Transport{
		MaxIdleConnsPerHost: concurrency,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	start := time.Now()
	for w := 0; w < concurrency; w++ {
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
				resp, err := client.Get("http://" + host + "/")
				var body string
				if err == nil {
					b, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					body = strings.TrimSpace(string(b))
					if rerr != nil {
						err = rerr
					} else if resp.StatusCode != 200 {
						err = fmt.Errorf("%s: %q", resp.Status, body)
					}
				}
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				if err != nil {
					failed.Add(1)
					if len(res.errors) < 10 {
						res.errors = append(res.errors, time.Now().UTC().Format("15:04:05.000")+" "+err.Error())
					}
				} else {
					ok.Add(1)
					if strings.HasPrefix(body, "release ") {
						res.bodies[body]++
					}
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	during()
	for ok.Load()+failed.Load() < min {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	res.took = time.Since(start)
	res.ok, res.failed = ok.Load(), failed.Load()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		res.p50, res.p99, res.max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	}
	return res
}

// webUnits returns the active web instances of app/env on srv: behind the
// front door, jecloud-APP_ENV_web@PORT.service, a new port at each deploy.
func webUnits(t *testing.T, srv *lab.Server, app, env string) []string {
	t.Helper()
	out, err := srv.Exec(t.Context(), "sh", "-c", "systemctl list-units --no-legend --plain --state=active 'jecloud-"+app+"_"+env+"_web@*.service' | awk '{print $1}'")
	if err != nil {
		t.Fatalf("list web units: %v %s", err, out)
	}
	return strings.Fields(out)
}

// webUnit is the only web instance of app/env on srv.
func webUnit(t *testing.T, srv *lab.Server, app, env string) string {
	t.Helper()
	u := webUnits(t, srv, app, env)
	if len(u) != 1 {
		t.Fatalf("web instances of %s/%s: %v, want one", app, env, u)
	}
	return u[0]
}

// webPort is the port of app/env's first web instance behind the front
// door, from its upstreams.json.
func webPort(t testing.TB, srv *lab.Server, app, env string) int {
	t.Helper()
	var u struct{ Web []string }
	b, err := srv.ReadFile("/var/cloud/" + app + "/" + env + "/upstreams.json")
	if err != nil || json.Unmarshal(b, &u) != nil || len(u.Web) == 0 {
		t.Fatalf("upstreams.json of %s/%s: %v %s", app, env, err, b)
	}
	_, p, _ := net.SplitHostPort(u.Web[0])
	n, _ := strconv.Atoi(p)
	return n
}

// TestFrontDoorFromSockets: an app environment running the socket mode's
// units (as every app did before the front door: web@1.service and
// web@1.socket on ports.json's port 5000) is redeployed in the default
// mode under load: its port is drained through the proxy, then its units
// and sockets are stopped, disabled and removed; no request fails.
func TestFrontDoorFromSockets(t *testing.T) {
	srv, jepush, nodeVersion := nodeServer(t)
	major := strings.Split(nodeVersion, ".")[0]
	push := jepushTo(t, jepush, srv)
	files := map[string]string{}
	for _, f := range []string{"server.js", "Procfile", "package-lock.json", "package.json"} {
		b, err := os.ReadFile(filepath.Join(repoRoot(), "examples", "hello", f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = string(b)
	}
	files["package.json"] = strings.Replace(files["package.json"], `"node": "20.x"`, `"node": "`+major+`.x"`, 1)
	files["jecloud.toml"] = "app = \"hello\"\n\n[web]\nhealth = \"/healthz\"\nsocket = true\n"
	dir := t.TempDir()
	writeFiles(t, dir, files)
	if code, out := push(dir, "prod"); code != 0 {
		t.Fatalf("push with socket = true: exit %d\n%s", code, out)
	}
	contains(t, "the socket", srv.MustExec("systemctl", "is-active", "jecloud-hello_prod_web@1.socket"), "active")
	if out, err := srv.Exec(t.Context(), "ls", "/var/cloud/hello/prod/upstreams.json"); err == nil {
		t.Fatalf("socket mode wrote upstreams.json: %s", out)
	}

	// The push ends once port 5000 serves the release; the same roll-forward
	// then routes it through the front door (a route step: HAProxy checks
	// and reloads its configuration, some 0.3 s).
	eventually(t, 10*time.Second, "hello/prod through the front door", func() bool {
		resp, err := http.Get("http://" + srv.Addr.String() + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	writeFiles(t, dir, map[string]string{"jecloud.toml": "app = \"hello\"\n\n[web]\nhealth = \"/healthz\"\n"})
	var code int
	var out string
	r := underLoad(t, srv.Addr.String()+":80", srv.Addr.String(), 8, 10000, func() { code, out = push(dir, "prod") })
	t.Logf("from socket units to the front door under load: %s", r)
	if code != 0 {
		t.Fatalf("push in the default mode: exit %d\n%s", code, out)
	}
	contains(t, "the push", out, "127.0.0.1:5000 drained in", "stopping jecloud-hello_prod_web@1.service (the web process is behind the front door now)")
	if r.failed != 0 || r.ok < 10000 {
		t.Errorf("%d ok, %d failed: %v", r.ok, r.failed, r.errors)
	}
	for _, u := range []string{"jecloud-hello_prod_web@1.service", "jecloud-hello_prod_web@1.socket"} {
		if s, _ := srv.Exec(t.Context(), "systemctl", "is-active", u); strings.TrimSpace(s) == "active" {
			t.Errorf("%s is still active", u)
		}
	}
	if left, _ := srv.Exec(t.Context(), "sh", "-c", "ls /etc/systemd/system/jecloud-hello_prod_web@.* /etc/systemd/system/*.wants/jecloud-hello_prod_web@1.* 2>/dev/null"); strings.TrimSpace(left) != "" {
		t.Errorf("left behind: %s", left)
	}
	webUnit(t, srv, "hello", "prod")
}
