//go:build e2e

package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/lab"
)

// BenchmarkFrontDoorLatency is the latency the front door adds, measured as
// issue #19 asks: a stock app (binds $PORT) on a lab server behind its front
// door, the client on the test host across the lab network, the same app
// asked directly at its instance's port and through the proxy on port 80
// in the same run, interleaved request by request, 500 requests a second
// in all, each over one kept-alive connection. b.N requests each.
//
// Other proxies to the same instance run beside the front door, for scale,
// each logging a line a request to the journal as the front door does: the
// same Caddy with one Go P (GOMAXPROCS=1), HAProxy (C, one event loop) and
// the smallest Go proxy (net/http/httputil, e2e/testdata/bareproxy); and
// the same Caddy without its access log, for what the log costs.
//
//	make build deb && JECLOUD_E2E=1 go test -tags e2e -run '^$' -bench FrontDoorLatency -benchtime 3000x ./e2e/
func BenchmarkFrontDoorLatency(b *testing.B) {
	if b.N == 1 {
		// go test's first probe run: the lab server and the push take a
		// minute, done once, for the -benchtime Nx run.
		return
	}
	srv, jepush, nodeVersion := nodeServer(b)
	major := strings.Split(nodeVersion, ".")[0]
	dir := b.TempDir()
	pkg, _ := json.Marshal(map[string]any{"name": "lat", "engines": map[string]string{"node": major + ".x"}})
	writeFiles(b, dir, map[string]string{
		"package.json": string(pkg), "Procfile": "web: node server.js\n", "jecloud.toml": "app = \"lat\"\n",
		"server.js": `require("http").createServer((q, s) => s.end("hello\n")).listen(process.env.PORT);` + "\n",
	})
	if code, out := jepushTo(b, jepush, srv)(dir, "prod"); code != 0 {
		b.Fatalf("push: exit %d\n%s", code, out)
	}
	port := webPort(b, srv, "lat", "prod")
	refs := referenceProxies(b, srv, port)
	type target struct {
		name   string
		client *http.Client
		url    string
		lat    []time.Duration
	}
	targets := []*target{
		{name: "direct", url: fmt.Sprintf("http://%s:%d/", srv.Addr, port)},
		{name: "frontdoor", url: "http://" + srv.Addr.String() + "/"},
	}
	for _, r := range refs {
		targets = append(targets, &target{name: r.name, url: fmt.Sprintf("http://%s:%d/", srv.Addr, r.port)})
	}
	get := func(t *target) time.Duration {
		t0 := time.Now()
		resp, err := t.client.Get(t.url)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "hello\n" {
			b.Fatalf("%s: %d %q", t.url, resp.StatusCode, body)
		}
		return time.Since(t0)
	}
	for _, t := range targets { // connections open, the app warm
		t.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		for range 100 {
			get(t)
		}
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := range len(targets) * b.N {
		<-tick.C
		t := targets[i%len(targets)]
		t.lat = append(t.lat, get(t))
	}
	b.StopTimer()
	pct := func(lat []time.Duration, p int) float64 {
		slices.Sort(lat)
		return float64(lat[len(lat)*p/100].Microseconds())
	}
	d50, d99 := pct(targets[0].lat, 50), pct(targets[0].lat, 99)
	b.ReportMetric(d50, "direct-p50-µs")
	b.ReportMetric(d99, "direct-p99-µs")
	for _, t := range targets[1:] {
		b.ReportMetric(pct(t.lat, 50)-d50, t.name+"-added-p50-µs")
		b.ReportMetric(pct(t.lat, 99)-d99, t.name+"-added-p99-µs")
	}
}

type referenceProxy struct {
	name string
	port int
}

// referenceProxies starts, in srv, four proxies to the app instance on
// port beside the front door, each as a transient unit logging to the
// journal (but one): the front door's own configuration in a second Caddy
// with GOMAXPROCS=1 (port 8081) and in a third without the access log
// (8084), HAProxy (8082: Debian's, the test host's binary and the
// libraries it needs, as the lab image has no HAProxy) and
// e2e/testdata/bareproxy (8083).
func referenceProxies(b *testing.B, srv *lab.Server, port int) []referenceProxy {
	b.Helper()
	upstream := fmt.Sprintf("127.0.0.1:%d", port)

	// Caddy: the front door's configuration, its HTTP server on another
	// port, without TLS (nothing here has a certificate) or its admin
	// socket; once with one Go P, once without the access log.
	raw, err := srv.ReadFile("/var/cloud/sys/proxy/caddy.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name, env string
		port      int
		log       bool
	}{{"caddy-1proc", "GOMAXPROCS=1", 8081, true}, {"caddy-nolog", "", 8084, false}} {
		var cfg map[string]any
		if err := json.Unmarshal(raw, &cfg); err != nil {
			b.Fatal(err)
		}
		cfg["admin"] = map[string]any{"disabled": true}
		delete(cfg, "storage")
		apps := cfg["apps"].(map[string]any)
		delete(apps, "tls")
		httpApp := apps["http"].(map[string]any)
		httpApp["http_port"] = c.port
		servers := httpApp["servers"].(map[string]any)
		delete(servers, "https")
		server := servers["http"].(map[string]any)
		server["listen"] = []string{fmt.Sprintf(":%d", c.port)}
		if !c.log {
			delete(server, "logs")
		}
		out, _ := json.Marshal(cfg)
		mustWrite(b, srv, "/run/reference/"+c.name+".json", out)
		srv.MustExec("systemd-run", "--unit", "reference-"+c.name, "-p", "Environment=GOMEMLIMIT=48MiB HOME=/run/reference "+c.env,
			"/usr/bin/caddy", "run", "--config", "/run/reference/"+c.name+".json")
	}

	// HAProxy: one frontend and backend, keep-alive both sides, an
	// access log line a request to the journal (syslog), X-Forwarded-For
	// set as Caddy does.
	out, err := exec.Command("ldd", "/usr/sbin/haproxy").Output()
	if err != nil {
		b.Skipf("haproxy is not installed on the test host (scripts/setup.sh installs it): %v", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[1] == "=>" && !strings.HasPrefix(f[0], "libc.so") && !strings.HasPrefix(f[0], "libm.so") {
			if err := srv.CopyIn(f[2], "/opt/reference/lib/"+f[0]); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := srv.CopyIn("/usr/sbin/haproxy", "/opt/reference/haproxy"); err != nil {
		b.Fatal(err)
	}
	mustWrite(b, srv, "/run/reference/haproxy.cfg", []byte(`global
  log /dev/log local0
  maxconn 1000
defaults
  mode http
  log global
  option httplog
  option forwardfor
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend web
  bind :8082
  default_backend app
backend app
  server app1 `+upstream+"\n"))
	srv.MustExec("systemd-run", "--unit", "reference-haproxy", "-p", "Environment=LD_LIBRARY_PATH=/opt/reference/lib",
		"/opt/reference/haproxy", "-W", "-f", "/run/reference/haproxy.cfg")

	// The smallest Go proxy.
	bin := filepath.Join(b.TempDir(), "bareproxy")
	build := exec.Command("go", "build", "-o", bin, "./e2e/testdata/bareproxy")
	build.Dir = repoRoot()
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build bareproxy: %v\n%s", err, out)
	}
	if err := srv.CopyIn(bin, "/opt/reference/bareproxy"); err != nil {
		b.Fatal(err)
	}
	srv.MustExec("systemd-run", "--unit", "reference-goproxy", "/opt/reference/bareproxy", ":8083", upstream)

	refs := []referenceProxy{{"caddy-1proc", 8081}, {"caddy-nolog", 8084}, {"haproxy", 8082}, {"goproxy", 8083}}
	for _, r := range refs {
		addr := net.JoinHostPort(srv.Addr.String(), fmt.Sprint(r.port))
		for i := 0; ; i++ {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if i == 100 {
				st, _ := srv.Exec(b.Context(), "systemctl", "status", "reference-"+r.name)
				b.Fatalf("%s does not listen on %s: %v\n%s", r.name, addr, err, st)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return refs
}

func mustWrite(b *testing.B, srv *lab.Server, path string, data []byte) {
	b.Helper()
	if err := srv.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
}
