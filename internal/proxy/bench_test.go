package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
)

// BenchmarkLatency is the latency the front door adds: the same app
// asked directly and through the proxy (real Caddy, loopback), at 500
// requests a second, one connection kept alive as a browser would. It
// reports p50 and p99 in microseconds; b.N requests per sub-benchmark.
//
//	go test -run '^$' -bench Latency -benchtime 5000x ./internal/proxy
func BenchmarkLatency(b *testing.B) {
	c, addr, _ := caddy(b)
	l := state.Layout{Root: b.TempDir()}
	ae := state.AppEnv{App: "shop", Env: "prod"}
	upstream := app(b, "shop", 0)
	deploy(b, l, ae, state.App{CurrentVersion: "aaaaaaaaaaaa", Domains: []string{"shop.example.com"}}, routes.Upstreams{Web: []string{upstream}})
	if _, err := c.Apply(context.Background(), l); err != nil {
		b.Fatal(err)
	}
	for _, target := range []struct{ name, addr, host string }{
		{"direct", upstream, "shop.example.com"},
		{"proxied", addr, "shop.example.com"},
	} {
		b.Run(target.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			req, _ := http.NewRequest("GET", "http://"+target.addr+"/", nil)
			req.Host = target.host
			lat := make([]time.Duration, 0, b.N)
			tick := time.NewTicker(2 * time.Millisecond) // 500/s
			defer tick.Stop()
			b.ResetTimer()
			for range b.N {
				<-tick.C
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkIdleMemory is the proxy's resident memory with 20 app
// environments routed (each with a domain and two instances), idle.
//
//	go test -run '^$' -bench IdleMemory -benchtime 1x ./internal/proxy
func BenchmarkIdleMemory(b *testing.B) {
	c, _, _ := caddy(b)
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
	b.ReportMetric(float64(rss(b, pidOf(b, c.Socket)))/(1<<20), "RSS-MB")
}

// pidOf finds the caddy process serving the admin socket sock.
func pidOf(b *testing.B, sock string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.HasPrefix(string(cmd), "/usr/bin/caddy\x00run") || strings.Contains(string(cmd), "caddy\x00run") {
			env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
			if strings.Contains(string(env), strings.TrimSuffix(sock, "/admin.sock")) {
				return pid
			}
		}
	}
	b.Fatal("no caddy process for " + sock)
	return 0
}

func rss(b *testing.B, pid int) int64 {
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
