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
// The front door is HAProxy. Two other proxies to the same instance run
// beside it, for scale, each logging a line a request to the journal as
// the front door does: Caddy as the front door was before (Go), and the
// smallest Go proxy (net/http/httputil, e2e/testdata/bareproxy).
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

// referenceProxies starts, in srv, two proxies to the app instance on
// port beside the front door, each as a transient unit logging a line a
// request to the journal as the front door does: Caddy as the front door
// was before HAProxy took its place (reverse_proxy, round robin, passive
// health checks, an access log; port 8081) and e2e/testdata/bareproxy,
// the smallest Go proxy (8083).
func referenceProxies(b *testing.B, srv *lab.Server, port int) []referenceProxy {
	b.Helper()
	upstream := fmt.Sprintf("127.0.0.1:%d", port)
	caddy, _ := json.Marshal(map[string]any{
		"admin": map[string]any{"disabled": true},
		"apps": map[string]any{"http": map[string]any{"http_port": 8081, "servers": map[string]any{"ref": map[string]any{
			"listen": []string{":8081"}, "logs": map[string]any{},
			"routes": []any{map[string]any{"handle": []any{map[string]any{
				"handler": "reverse_proxy", "upstreams": []any{map[string]any{"dial": upstream}},
				"load_balancing": map[string]any{"selection_policy": map[string]any{"policy": "round_robin"}, "try_duration": "5s", "try_interval": "100ms"},
				"health_checks":  map[string]any{"passive": map[string]any{"fail_duration": "10s"}},
			}}}},
		}}}},
	})
	mustWrite(b, srv, "/run/reference/caddy.json", caddy)
	srv.MustExec("systemd-run", "--unit", "reference-caddy", "-p", "Environment=GOMEMLIMIT=48MiB HOME=/run/reference",
		"/usr/bin/caddy", "run", "--config", "/run/reference/caddy.json")

	// HAProxy as plainly as it comes (one frontend and backend, an
	// access-log line a request to the journal), and the front door's own
	// configuration with one thread: what the front door's rules and its
	// threads cost, if anything.
	mustWrite(b, srv, "/run/reference/haproxy-plain.cfg", []byte(`global
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
	door, err := srv.ReadFile("/var/cloud/sys/proxy/haproxy.cfg")
	if err != nil {
		b.Fatal(err)
	}
	one := strings.Replace(strings.Replace(string(door), "    bind :80\n", "    bind :8085\n", 1), "global\n", "global\n    nbthread 1\n", 1)
	mustWrite(b, srv, "/run/reference/haproxy-1thread.cfg", []byte(one))
	for _, name := range []string{"haproxy-plain", "haproxy-1thread"} {
		srv.MustExec("systemd-run", "--unit", "reference-"+name, "/usr/sbin/haproxy", "-W", "-f", "/run/reference/"+name+".cfg")
	}

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

	refs := []referenceProxy{{"caddy", 8081}, {"goproxy", 8083}, {"haproxy-plain", 8082}, {"haproxy-1thread", 8085}}
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
