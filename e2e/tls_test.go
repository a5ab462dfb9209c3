//go:build e2e

package e2e_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/lab"
	"github.com/jecloud/jecloud/internal/proxy"
)

// TestTLS: automatic TLS on a lab server with the real Caddy and the real
// Pebble (Let's Encrypt's test CA) on the host, validating for real: its
// DNS maps the test's names to the server, so its HTTP-01 or TLS-ALPN-01
// requests reach the server's front door. A real ACME order completes; an
// HTTPS request verifies against Pebble's root; plain HTTP then redirects
// to HTTPS; jeagent status shows the certificate issued with its expiry.
// Faults: a refused order and an unreachable CA leave the names served
// over HTTP, drop nothing already routed, and show the CA's reason in
// jeagent status.
func TestTLS(t *testing.T) {
	srv, jepush, _ := nodeServer(t)
	push := jepushTo(t, jepush, srv)
	pebble := lab.StartPebble(t, srv.HostAddr, lab.PebbleOptions{Blocklist: []string{"refused.example.com"}})
	for _, h := range []string{"hello.example.com", "refused.example.com", "late.example.com"} {
		if err := pebble.AddA(h, srv.Addr); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.WriteFile("/etc/jecloud-test-acme-ca.pem", pebble.CARoot, 0o644); err != nil {
		t.Fatal(err)
	}
	edit := func(path, key, value string) { // as a person would, keeping the other keys
		srv.MustExec("python3", "-c", `import json, sys
p, k, v = sys.argv[1:]
d = json.load(open(p))
d[k] = json.loads(v)
json.dump(d, open(p, "w"), indent=2)`, path, key, value)
	}
	acme, _ := json.Marshal(map[string]any{"acme": map[string]string{"ca": pebble.Directory, "ca_root": "/etc/jecloud-test-acme-ca.pem", "email": "ops@example.com"}})
	edit("/var/cloud/sys/server.json", "proxy", string(acme))
	if code, out := push(filepath.Join(repoRoot(), "examples", "hello"), "demo"); code != 0 {
		t.Fatalf("jepush examples/hello: exit %d\n%s", code, out)
	}
	start := time.Now()
	edit("/var/cloud/hello/demo/app.json", "domains", `["hello.example.com", "refused.example.com"]`)
	srv.MustExec("jeagent", "rollforward")

	certs := func() map[string]proxy.Cert {
		var st struct {
			Apps []struct {
				App, Env     string
				Certificates []proxy.Cert
			}
		}
		out := srv.MustExec("jeagent", "status", "--json")
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("jeagent status --json: %v\n%s", err, out)
		}
		m := map[string]proxy.Cert{}
		for _, a := range st.Apps {
			for _, c := range a.Certificates {
				m[c.Host] = c
			}
		}
		return m
	}
	var got map[string]proxy.Cert
	eventually(t, 60*time.Second, "hello.example.com issued and refused.example.com failing in jeagent status", func() bool {
		got = certs()
		return got["hello.example.com"].State == proxy.CertIssued && got["refused.example.com"].State == proxy.CertFailing
	})
	issuedIn := time.Since(start)
	if c := got["hello.example.com"]; !strings.HasPrefix(c.Issuer, "Pebble Intermediate CA") || c.Expires.Before(time.Now().Add(24*time.Hour)) {
		t.Errorf("hello.example.com's certificate: %+v", c)
	}
	// Pebble validated a challenge against the server's front door (no
	// PEBBLE_VA_ALWAYS_VALID: an issued certificate means it passed):
	// Caddy logged the challenge it presented.
	solved, _ := srv.Exec(t.Context(), "journalctl", "-u", "jecloud-proxy.service", "-o", "cat", "--no-pager", "-g", `"msg":"trying to solve challenge".*hello.example.com`)
	if !strings.Contains(solved, "trying to solve challenge") {
		t.Errorf("no challenge solved for hello.example.com in the front door's journal:\n%s", solved)
	}
	challenge := "?"
	for _, line := range strings.Split(solved, "\n") {
		var l struct {
			ChallengeType string `json:"challenge_type"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.ChallengeType != "" {
			challenge = l.ChallengeType
		}
	}
	if c := got["refused.example.com"]; !strings.Contains(c.Error, "rejectedIdentifier") {
		t.Errorf("refused.example.com's reason: %q, want Pebble's rejectedIdentifier", c.Error)
	}

	root, err := pebble.Root()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(root) {
		t.Fatalf("pebble's root: %q", root)
	}
	client := func(port string) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool},
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(srv.Addr.String(), port))
			},
		}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	httpsGet := func(host string) (int, string, error) {
		resp, err := client("443").Get("https://" + host + "/")
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	httpGet := func(host string) (int, string) {
		resp, err := client("80").Get("http://" + host + "/path?q=1")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Location") + string(b)
	}
	// HAProxy serves it from the next roll-forward on (the timer's, within
	// a minute; here at once): the planner sees the certificate in Caddy's
	// storage.
	if out := srv.MustExec("jeagent", "rollforward"); !strings.Contains(out, "route") {
		t.Errorf("the roll-forward after issuance planned no route step:\n%s", out)
	}
	code, body, err := httpsGet("hello.example.com")
	if err != nil || code != 200 || !strings.Contains(body, "hello from JeCloud") {
		t.Fatalf("https://hello.example.com/ verified against Pebble's root: %d %q %v", code, body, err)
	}

	// With the certificate served, HTTP is redirected to HTTPS for that
	// name, and only for it.
	if code, loc := httpGet("hello.example.com"); code != http.StatusPermanentRedirect || loc != "https://hello.example.com/path?q=1" {
		t.Errorf("http://hello.example.com/path?q=1 once issued: %d %q, want 308 to https://hello.example.com/path?q=1", code, loc)
	}
	if code, body := httpGet("refused.example.com"); code != 200 || !strings.Contains(body, "hello from JeCloud") {
		t.Errorf("http://refused.example.com/ (order refused): %d %q, want served over HTTP", code, body)
	}

	// The git webhook, on loopback, reached through the front door over
	// HTTPS at /hooks/APP/ENV of the environment's domain: a delivery with
	// a bad signature gets the webhook's own refusal.
	setupIn, _ := json.Marshal(map[string]string{"secret": strings.Repeat("ab", 16), "known_hosts": srv.KnownHostsLine()})
	setup := srv.Command(t.Context(), "jeagent", "git", "setup", "hello", "demo", "--repo", "ssh://root@"+srv.Addr.String()+"/srv/git/hello.git", "--json")
	setup.Stdin = bytes.NewReader(setupIn)
	if out, err := setup.CombinedOutput(); err != nil || !strings.Contains(string(out), `"listen":"127.0.0.1:9100"`) || !strings.Contains(string(out), `"domains":["hello.example.com"`) {
		t.Fatalf("jeagent git setup: %v\n%s", err, out)
	}
	req, _ := http.NewRequest("POST", "https://hello.example.com/hooks/hello/demo", strings.NewReader(`{"ref":"refs/heads/main"}`))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "tls-1")
	req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
	if resp, err := client("443").Do(req); err != nil {
		t.Errorf("webhook over HTTPS: %v", err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "not accepted") {
			t.Errorf("webhook over HTTPS with a bad signature: %d %s, want the webhook's 401", resp.StatusCode, b)
		} else {
			t.Logf("webhook over HTTPS at https://hello.example.com/hooks/hello/demo: %d %s", resp.StatusCode, bytes.TrimSpace(b))
		}
	}
	status := srv.MustExec("jeagent", "status")
	for _, want := range []string{"hello.example.com  issued by Pebble Intermediate CA", "expires " + got["hello.example.com"].Expires.UTC().Format(time.DateOnly), "refused.example.com  failing", "rejectedIdentifier"} {
		if !strings.Contains(status, want) {
			t.Errorf("jeagent status lacks %q:\n%s", want, status)
		}
	}
	t.Logf("jeagent status:\n%s", status)

	// The CA goes away; a name added meanwhile is served over HTTP, the
	// reason shows, and nothing already routed is dropped.
	pebble.Stop()
	edit("/var/cloud/hello/demo/app.json", "domains", `["hello.example.com", "refused.example.com", "late.example.com"]`)
	srv.MustExec("jeagent", "rollforward")
	eventually(t, 60*time.Second, "late.example.com failing in jeagent status with the CA unreachable", func() bool {
		got = certs()
		return got["late.example.com"].State == proxy.CertFailing
	})
	switch c := got["late.example.com"]; {
	case strings.Contains(c.Error, "connection refused"):
	case strings.Contains(c.Error, "getting ACME account: invalid character"):
		// Caddy 2.6.2 (certmagic) once wrote its ACME account file from two
		// orders at once, and then read it back broken: the reason shown is
		// that one, not the CA's (CI, 2026-12-04; docs/routing.md#tls).
		t.Logf("late.example.com's reason with the CA stopped: %q (Caddy's account file, written twice at once)", c.Error)
	default:
		t.Errorf("late.example.com's reason with the CA stopped: %q, want connection refused", c.Error)
	}
	if code, body := httpGet("late.example.com"); code != 200 || !strings.Contains(body, "hello from JeCloud") {
		t.Errorf("http://late.example.com/ (CA unreachable): %d %q, want served over HTTP", code, body)
	}
	if code, body, err := httpsGet("hello.example.com"); err != nil || code != 200 || !strings.Contains(body, "hello from JeCloud") {
		t.Errorf("https://hello.example.com/ with the CA unreachable: %d %q %v", code, body, err)
	}
	if code, loc := httpGet("hello.example.com"); code != http.StatusPermanentRedirect {
		t.Errorf("http://hello.example.com/ with the CA unreachable: %d %q, want 308", code, loc)
	}
	if code, body := httpGet("refused.example.com"); code != 200 || !strings.Contains(body, "hello from JeCloud") {
		t.Errorf("http://refused.example.com/ with the CA unreachable: %d %q", code, body)
	}
	if c := got["hello.example.com"]; c.State != proxy.CertIssued {
		t.Errorf("hello.example.com with the CA unreachable: %+v", c)
	}
	t.Logf("summary: real ACME order against Pebble (%s validated against the lab server's front door) issued in %v (domains written to certificate in status); HTTPS verified against Pebble's root; HTTP 308 to HTTPS once issued; refused order: %s; CA stopped: %s; both names still served over HTTP", challenge, issuedIn.Round(100*time.Millisecond), got["refused.example.com"], got["late.example.com"])
}
