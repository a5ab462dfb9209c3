//go:build e2e

package e2e_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestALBRollingDeploy (issue #22 §1): an EC2 environment of three web
// servers (lab servers booted by the EC2 fake with cloud-init) gets an
// application load balancer on its first push; the fake runs it as a real
// HAProxy on the test host, its backend the registered targets. A rolling
// deploy (jepush v2) under load through the balancer's address: jepush
// deregisters each server, waits until it is drained, deploys, waits for
// its health path, registers it again and waits until it is healthy, then
// the next. No request fails, at most one server is out of rotation at a
// time (HAProxy's stats read every 100 ms), `jepush servers` shows the
// targets' health, and `jepush destroy` deletes the balancer.
func TestALBRollingDeploy(t *testing.T) {
	t.Parallel() // mostly waiting (docs/lab.md: lab tests in parallel)
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal("haproxy is not installed (scripts/setup.sh installs it)")
	}
	w := newEC2World(t, "servers = 3\n")
	w.fake.SetHAProxy(haproxy)

	start := time.Now()
	out, err := w.jepushIn("", w.app, "test")
	t.Logf("first push (3 servers made, a load balancer, v1 on each): %s\n%s", time.Since(start).Round(time.Second), out)
	if err != nil {
		t.Fatalf("jepush: %v", err)
	}
	contains(t, "first push", out, "created load balancer jc-hello-test-", "created target group", "back in load balancer")
	lbs := w.fake.Balancers()
	if len(lbs) != 1 || lbs[0].Addr == "" || lbs[0].Tags["jecloud:app"] != "hello" || lbs[0].Tags["jecloud:env"] != "test" {
		t.Fatalf("load balancers: %+v", lbs)
	}
	lb := lbs[0]
	var ids []string
	for _, in := range w.fake.Instances() {
		if in.State == "running" {
			ids = append(ids, in.ID)
		}
	}
	if len(ids) != 3 {
		t.Fatalf("%d instances running, want 3", len(ids))
	}
	eventually(t, 30*time.Second, "HAProxy sees the three servers up", func() bool {
		st, err := w.fake.BalancerStatus(lb.Name)
		return err == nil && len(st) == 3 && !slices.ContainsFunc(ids, func(id string) bool { return st[id] != "UP" })
	})
	get := func() string {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{}).DialContext}}
		req, _ := http.NewRequest("GET", "http://"+lb.Addr+"/", nil)
		req.Host = lb.DNSName
		resp, err := c.Do(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Status + " " + string(b)
	}
	if s := get(); !strings.Contains(s, "200 OK hello from JeCloud") {
		t.Fatalf("through the balancer: %s", s)
	}

	// jepush servers: each target's health.
	out, err = w.jepushIn("", "servers", "test", "--dir", w.app)
	t.Logf("jepush servers:\n%s", out)
	if err != nil || strings.Count(out, " healthy") != 3 || !strings.Contains(out, "load balancer "+lb.Name+": http://"+lb.DNSName+"/") {
		t.Errorf("jepush servers: %v\n%s", err, out)
	}
	out, err = w.jepushIn("", "servers", "test", "--dir", w.app, "--json")
	var doc struct {
		LoadBalancer struct {
			Name    string `json:"name"`
			Targets []struct {
				InstanceID string `json:"instance_id"`
				State      string `json:"state"`
			} `json:"targets"`
		} `json:"load_balancer"`
	}
	if err != nil || json.Unmarshal([]byte(out), &doc) != nil || doc.LoadBalancer.Name != lb.Name || len(doc.LoadBalancer.Targets) != 3 {
		t.Errorf("jepush servers --json: %v\n%s", err, out)
	}

	// v2 under load through the balancer, HAProxy's view read every 100 ms.
	var mu sync.Mutex
	outSeen := map[string]bool{}
	maxOut := 0
	var timeline []string
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		last := ""
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			st, err := w.fake.BalancerStatus(lb.Name)
			if err != nil {
				continue
			}
			n := 0
			var line []string
			for i, id := range ids {
				s := st[id]
				if s == "" {
					s = "gone"
				}
				line = append(line, "s"+string(rune('1'+i))+"="+s)
				if !strings.HasPrefix(s, "UP") {
					n++
					mu.Lock()
					outSeen[id] = true
					mu.Unlock()
				}
			}
			mu.Lock()
			maxOut = max(maxOut, n)
			if l := strings.Join(line, " "); l != last {
				timeline = append(timeline, time.Now().UTC().Format("15:04:05.0")+" "+l)
				last = l
			}
			mu.Unlock()
		}
	}()
	os.WriteFile(filepath.Join(w.app, "version.txt"), []byte("2\n"), 0o644)
	var perr error
	start = time.Now()
	var took time.Duration
	r := underLoad(t, lb.Addr, lb.DNSName, 8, 10000, func() {
		out, perr = w.jepushIn("", w.app, "test")
		took = time.Since(start)
	})
	close(stop)
	<-watched
	t.Logf("second push (v2, rolling through the balancer): %s\n%s", took.Round(time.Second), out)
	t.Logf("HAProxy's view:\n  %s", strings.Join(timeline, "\n  "))
	var drained []string
	for _, m := range regexp.MustCompile(`(?m)@([0-9.]+): (drained in [0-9.]+m?s|back in load balancer \S+, healthy after [0-9.]+m?s)$`).FindAllStringSubmatch(out, -1) {
		drained = append(drained, m[1]+" "+m[2])
	}
	t.Logf("summary: rolling deploy of 3 servers behind the load balancer (the fake's HAProxy) in %s, under load through it: %s; at most %d server(s) out of rotation at once, out in turn: %d of 3; per server: %s",
		took.Round(time.Second), r, maxOut, len(outSeen), strings.Join(drained, ", "))
	if perr != nil {
		t.Fatalf("jepush v2: %v", perr)
	}
	if r.failed != 0 || r.ok < 10000 {
		t.Errorf("%d ok, %d failed: %v", r.ok, r.failed, r.errors)
	}
	if len(outSeen) != 3 || maxOut != 1 {
		t.Errorf("servers out of rotation during the deploy: %v, at most %d at once; want each of the three, one at a time", outSeen, maxOut)
	}
	v2 := regexp.MustCompile(`version ([0-9a-f]{12}) is live on`).FindStringSubmatch(out)
	if v2 == nil {
		t.Fatalf("no version live in the output")
	}
	for range 6 { // each server, twice
		if s := get(); !strings.Contains(s, "200 OK hello from JeCloud (release "+v2[1]) {
			t.Errorf("through the balancer after the deploy: %s, want release %s", s, v2[1])
		}
	}

	// HTTPS at the balancer: a domain, an ACM certificate whose DNS records
	// the push prints, issued (the fake's stand-in for ACM seeing the
	// records), and the next push adds the HTTPS listener: the fake's second
	// HAProxy, terminating TLS and sending X-Forwarded-Proto: https.
	out, err = w.jepushIn("", "domains:add", "test", "www.example.com", "--dir", w.app)
	if err != nil {
		t.Fatalf("domains:add: %v\n%s", err, out)
	}
	start = time.Now()
	out, err = w.jepushIn("", w.app, "test")
	t.Logf("push after domains:add: %s\n%s", time.Since(start).Round(time.Second), out)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	contains(t, "push after domains:add", out, "requested an ACM certificate for www.example.com", "ACM issues its certificate once these DNS records exist",
		".www.example.com. CNAME _", ".acm-validations.aws.   (for www.example.com)")
	if n := w.fake.IssueCertificates(); n != 1 {
		t.Fatalf("%d certificates pending, want 1", n)
	}
	start = time.Now()
	out, err = w.jepushIn("", w.app, "test")
	t.Logf("push once the certificate is issued: %s\n%s", time.Since(start).Round(time.Second), out)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	contains(t, "push once issued", out, "listens on HTTPS:443 with the ACM certificate for www.example.com")
	tlsAddr := w.fake.Balancers()[0].TLSAddr
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: "www.example.com", InsecureSkipVerify: true}, // the fake's self-signed stand-in for ACM's
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", tlsAddr)
		},
	}}
	// A new listener of the fake is a new HAProxy whose checks start from
	// nothing (an ALB's listener shares its target group's health): wait
	// for its first answer.
	eventually(t, 30*time.Second, "the HTTPS listener serves", func() bool {
		resp, err := hc.Get("https://www.example.com/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	for range 3 {
		resp, err := hc.Get("https://www.example.com/")
		if err != nil {
			t.Fatalf("HTTPS through the balancer: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "release "+v2[1]) || resp.TLS == nil || resp.TLS.PeerCertificates[0].DNSNames[0] != "www.example.com" {
			t.Errorf("https://www.example.com/ through the balancer: %s %q", resp.Status, b)
		}
	}

	// Destroy deletes the balancer, its target group and security group.
	out, err = w.jepushIn("", "destroy", "test", "--dir", w.app, "--yes")
	t.Logf("jepush destroy:\n%s", out)
	if err != nil {
		t.Fatalf("destroy: %v", err)
	}
	contains(t, "destroy", out, "deleted ACM certificate for www.example.com", "deleted load balancer "+lb.Name, "deleted target group "+lb.Name, "deleted security group jecloud-hello_test+lb")
	if len(w.fake.Balancers()) != 0 || len(w.fake.TargetGroups()) != 0 || len(w.fake.Certificates()) != 0 {
		t.Errorf("after destroy: balancers %+v, target groups %v", w.fake.Balancers(), w.fake.TargetGroups())
	}
}
