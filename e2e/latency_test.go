//go:build e2e

package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkFrontDoorLatency is the latency the front door adds, measured as
// issue #19 asks: a stock app (binds $PORT) on a lab server behind its front
// door, the client on the test host across the lab network, the same app
// asked directly at its instance's port and through the proxy on port 80
// in the same run, interleaved request by request, 500 requests a second
// in all, each over one kept-alive connection. b.N requests each.
//
//	make build deb && JECLOUD_E2E=1 go test -tags e2e -run '^$' -bench FrontDoorLatency -benchtime 5000x ./e2e/
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
	direct := fmt.Sprintf("%s:%d", srv.Addr, webPort(b, srv, "lat", "prod"))
	type target struct {
		client *http.Client
		url    string
		lat    []time.Duration
	}
	targets := []*target{
		{client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}, url: "http://" + direct + "/"},
		{client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}, url: "http://" + srv.Addr.String() + "/"},
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
		for range 100 {
			get(t)
		}
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := range 2 * b.N {
		<-tick.C
		t := targets[i%2]
		t.lat = append(t.lat, get(t))
	}
	b.StopTimer()
	pct := func(lat []time.Duration, p int) float64 {
		slices.Sort(lat)
		return float64(lat[len(lat)*p/100].Microseconds())
	}
	d50, d99, p50, p99 := pct(targets[0].lat, 50), pct(targets[0].lat, 99), pct(targets[1].lat, 50), pct(targets[1].lat, 99)
	b.ReportMetric(d50, "direct-p50-µs")
	b.ReportMetric(d99, "direct-p99-µs")
	b.ReportMetric(p50, "proxied-p50-µs")
	b.ReportMetric(p99, "proxied-p99-µs")
	b.ReportMetric(p50-d50, "added-p50-µs")
	b.ReportMetric(p99-d99, "added-p99-µs")
}
