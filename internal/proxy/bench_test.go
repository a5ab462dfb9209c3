package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
)

// BenchmarkLatency is the latency the front door adds: the same app
// asked directly, through the front door (real HAProxy, loopback), and through a
// bare reverse proxy (net/http/httputil, in a process of its own: the
// smallest proxy there is, for scale) in the same run, interleaved request
// by request (so that whatever else the machine does falls on all alike),
// at 500 requests a second in all, each over one connection kept alive as
// a browser would. It reports p50 and p99 of each in microseconds, and what
// each proxy adds to them; b.N requests each.
//
//	go test -run '^$' -bench Latency -benchtime 5000x ./internal/proxy
func BenchmarkLatency(b *testing.B) {
	c, addr, _ := door(b)
	l := state.Layout{Root: b.TempDir()}
	ae := state.AppEnv{App: "shop", Env: "prod"}
	upstream := app(b, "shop", 0)
	deploy(b, l, ae, state.App{CurrentVersion: "aaaaaaaaaaaa", Domains: []string{"shop.example.com"}}, routes.Upstreams{Web: []string{upstream}})
	if _, err := c.Apply(context.Background(), l); err != nil {
		b.Fatal(err)
	}
	bare := bareProxy(b, upstream)
	type target struct {
		client *http.Client
		req    *http.Request
		lat    []time.Duration
	}
	var targets []*target
	for _, a := range []string{upstream, addr, bare} {
		req, _ := http.NewRequest("GET", "http://"+a+"/", nil)
		req.Host = "shop.example.com"
		targets = append(targets, &target{client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}, req: req, lat: make([]time.Duration, 0, b.N)})
	}
	direct, proxied, bared := targets[0], targets[1], targets[2]
	tick := time.NewTicker(2 * time.Millisecond) // 500/s in all
	defer tick.Stop()
	b.ResetTimer()
	for i := range len(targets) * b.N {
		<-tick.C
		t := targets[i%len(targets)]
		t0 := time.Now()
		resp, err := t.client.Do(t.req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %s", t.req.URL, resp.Status)
		}
		t.lat = append(t.lat, time.Since(t0))
	}
	b.StopTimer()
	pct := func(lat []time.Duration, p int) float64 {
		slices.Sort(lat)
		return float64(lat[len(lat)*p/100].Microseconds())
	}
	d50, d99, p50, p99 := pct(direct.lat, 50), pct(direct.lat, 99), pct(proxied.lat, 50), pct(proxied.lat, 99)
	g50, g99 := pct(bared.lat, 50), pct(bared.lat, 99)
	b.ReportMetric(d50, "direct-p50-µs")
	b.ReportMetric(d99, "direct-p99-µs")
	b.ReportMetric(p50, "proxied-p50-µs")
	b.ReportMetric(p99, "proxied-p99-µs")
	b.ReportMetric(p50-d50, "added-p50-µs")
	b.ReportMetric(p99-d99, "added-p99-µs")
	b.ReportMetric(g50-d50, "bare-added-p50-µs")
	b.ReportMetric(g99-d99, "bare-added-p99-µs")
}

// bareProxyEnv makes the test binary a bare reverse proxy (see TestMain).
const bareProxyEnv = "JECLOUD_BENCH_BARE_PROXY"

// bareProxy starts this test binary again as a bare reverse proxy to
// upstream, in a process of its own as HAProxy is, and returns its address.
func bareProxy(b *testing.B, upstream string) string {
	addr := freeAddr(b)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), bareProxyEnv+"="+addr+" "+upstream)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatal("the bare proxy did not listen")
	return ""
}

// TestMain serves as the bare proxy of BenchmarkLatency when asked to.
func TestMain(m *testing.M) {
	if v := os.Getenv(bareProxyEnv); v != "" {
		listen, upstream, _ := strings.Cut(v, " ")
		u := &url.URL{Scheme: "http", Host: upstream}
		fmt.Fprintln(os.Stderr, http.ListenAndServe(listen, httputil.NewSingleHostReverseProxy(u)))
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// BenchmarkIdleMemory is the front door's memory (HAProxy's master and
// worker and Caddy, proportional set sizes: pages they share counted once)
// with 20 app environments routed (each with a domain and two
// instances), idle.
//
//	go test -run '^$' -bench IdleMemory -benchtime 1x ./internal/proxy
func BenchmarkIdleMemory(b *testing.B) {
	c, _, _ := door(b)
	l := state.Layout{Root: b.TempDir()}
	for i := range 20 {
		ae := state.AppEnv{App: fmt.Sprintf("app%d", i), Env: "prod"}
		deploy(b, l, ae, state.App{CurrentVersion: "aaaaaaaaaaaa", Domains: []string{ae.App + ".example.com"}},
			routes.Upstreams{Web: []string{fmt.Sprintf("127.0.0.1:%d", 20000+2*i), fmt.Sprintf("127.0.0.1:%d", 20001+2*i)}})
	}
	for range b.N {
		if _, err := c.Apply(context.Background(), l); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second) // idle
	var caddy, haproxy int64
	for _, pid := range pidsOf(b, filepath.Dir(c.Socket)) {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(cmd), "haproxy") {
			haproxy += pss(b, pid)
		} else {
			caddy += pss(b, pid)
		}
	}
	b.ReportMetric(float64(caddy+haproxy)/(1<<20), "PSS-MB")
	b.ReportMetric(float64(haproxy)/(1<<20), "haproxy-PSS-MB")
	b.ReportMetric(float64(caddy)/(1<<20), "caddy-PSS-MB")
}

// pidsOf finds the front door's processes that door started in dir.
func pidsOf(b *testing.B, dir string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		if (strings.Contains(string(cmd), "haproxy") || strings.Contains(string(cmd), "caddy\x00run")) && (strings.Contains(string(cmd), dir) || strings.Contains(string(env), dir)) {
			pids = append(pids, pid)
		}
	}
	if len(pids) < 3 {
		b.Fatalf("front door processes for %s: %v, want HAProxy's master and worker and Caddy", dir, pids)
	}
	return pids
}

// pss is a process's proportional set size.
func pss(b *testing.B, pid int) int64 {
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no Pss")
	return 0
}
