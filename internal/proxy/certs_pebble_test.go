package proxy_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/lab"
	"github.com/jecloud/jecloud/internal/proxy"
	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
)

// TestCertificatesPebble runs the real front door (HAProxy and Caddy) and
// the real Pebble on loopback: a real ACME order (Pebble validates over
// HTTP-01 through HAProxy's port 80, which sends the challenge to Caddy)
// gives an issued certificate whose expiry Certificates reads from
// storage, which HAProxy then serves; a name Pebble refuses shows as
// failing with Pebble's reason, read from Caddy's own log.
func TestCertificatesPebble(t *testing.T) {
	c, httpAddr, _ := door(t)
	var at routes.Input
	c.Adjust(&at)
	httpsAddr, storage := at.HTTPS, at.Storage
	logFile := filepath.Join(filepath.Dir(c.Socket), "caddy.log")
	port := func(a string) int { return int(netip.MustParseAddrPort(a).Port()) }
	lo := netip.MustParseAddr("127.0.0.1")
	pebble := lab.StartPebble(t, lo, lab.PebbleOptions{HTTPPort: port(httpAddr), TLSPort: port(httpsAddr), Blocklist: []string{"refused.example.com"}})
	for _, h := range []string{"shop.example.com", "refused.example.com"} {
		if err := pebble.AddA(h, lo); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	l := state.Layout{Root: t.TempDir()}
	os.MkdirAll(l.Sys(), 0o755)
	root := filepath.Join(dir, "pebble-ca.pem")
	os.WriteFile(root, pebble.CARoot, 0o644)
	os.WriteFile(l.ServerJSON(), []byte(`{"proxy": {"acme": {"ca": "`+pebble.Directory+`", "ca_root": "`+root+`", "email": "ops@example.com"}}}`), 0o644)
	shop := state.AppEnv{App: "shop", Env: "prod"}
	deploy(t, l, shop, state.App{CurrentVersion: "aaaaaaaaaaaa", Domains: []string{"shop.example.com", "refused.example.com"}}, routes.Upstreams{Web: []string{app(t, "shop", 0)}})
	start := time.Now()
	if _, err := c.Apply(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	hosts := []string{"shop.example.com", "refused.example.com"}
	var certs []proxy.Cert
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(logFile)
		certs = proxy.Certificates(storage, hosts, bytes.NewReader(b))
		if certs[0].State == proxy.CertIssued && certs[1].State == proxy.CertFailing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s: %+v\ncaddy:\n%s\n%s", certs, b, pebble.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(start)
	if c := certs[0]; !strings.HasPrefix(c.Issuer, "Pebble Intermediate") || c.Expires.Before(time.Now().Add(24*time.Hour)) {
		t.Errorf("issued certificate: %+v", c)
	}
	if c := certs[1]; !strings.Contains(c.Error, "rejectedIdentifier") {
		t.Errorf("refused order's reason: %q", c.Error)
	}
	// The next Apply (the planner's, on a server) gives HAProxy the
	// certificate; HTTPS verified against Pebble's root.
	if _, err := c.Apply(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	pemRoot, err := pebble.Root()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemRoot)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", httpsAddr)
		},
	}}
	resp, err := hc.Get("https://shop.example.com/")
	if err != nil {
		b, _ := os.ReadFile(logFile)
		t.Fatalf("HTTPS to shop.example.com: %v\n%s", err, b)
	}
	resp.Body.Close()
	// Once issued, HTTP is redirected to HTTPS for that name only.
	req, _ := http.NewRequest("GET", "http://"+httpAddr+"/x?y=1", nil)
	req.Host = "shop.example.com"
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if r, err := noFollow.Do(req); err != nil {
		t.Fatal(err)
	} else if r.Body.Close(); r.StatusCode != http.StatusPermanentRedirect || r.Header.Get("Location") != "https://shop.example.com/x?y=1" {
		t.Errorf("http://shop.example.com/x?y=1 after issuance: %d %q, want 308 to https", r.StatusCode, r.Header.Get("Location"))
	}
	// Behind a load balancer that ended the client's TLS (an ALB's HTTPS
	// listener says so in X-Forwarded-Proto), no redirect: it would loop.
	req.Header.Set("X-Forwarded-Proto", "https")
	if r, err := noFollow.Do(req); err != nil {
		t.Fatal(err)
	} else if r.Body.Close(); r.StatusCode != http.StatusOK {
		t.Errorf("http://shop.example.com/x?y=1 with X-Forwarded-Proto: https: %d %q, want served", r.StatusCode, r.Header.Get("Location"))
	}
	if code, body := get(t, httpAddr, "refused.example.com"); code != 200 || !strings.HasPrefix(body, "shop") {
		t.Errorf("http://refused.example.com/ (no certificate): %d %q, want served", code, body)
	}
	t.Logf("issued in %v: %s; refused: %s; HTTPS %s", took.Round(time.Millisecond), certs[0], certs[1], resp.Status)

	// Caddy 2.6.2 once wrote its ACME account file from two orders at
	// once (CI, 2026-12-04), and every later order failed on it. The next
	// Apply removes such a file; Caddy registers a new account and the
	// next name gets its certificate.
	regs, _ := filepath.Glob(filepath.Join(storage, "acme", "*", "users", "*", "*.json"))
	if len(regs) != 1 {
		t.Fatalf("ACME account files: %v, want one", regs)
	}
	f, err := os.OpenFile(regs[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"status": "valid"}`) // the second writer's tail, as in CI
	f.Close()
	old := time.Now().Add(-2 * time.Minute)
	os.Chtimes(regs[0], old, old)
	if err := pebble.AddA("blog.example.com", lo); err != nil {
		t.Fatal(err)
	}
	deploy(t, l, shop, state.App{CurrentVersion: "aaaaaaaaaaaa", Domains: []string{"shop.example.com", "refused.example.com", "blog.example.com"}}, routes.Upstreams{Web: []string{app(t, "shop", 0)}})
	notes, err := c.Apply(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, "broken ACME account") }) {
		t.Errorf("notes %q: want the broken account named", notes)
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(logFile)
		blog := proxy.Certificates(storage, []string{"blog.example.com"}, bytes.NewReader(b))[0]
		if blog.State == proxy.CertIssued {
			t.Logf("after the broken account: %s", blog)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s: %s\ncaddy:\n%s", blog, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
