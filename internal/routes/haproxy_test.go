package routes

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/state"
)

// storeCert writes a self-signed certificate for host where Caddy's file
// storage under dir keeps one (HOST.crt and HOST.key).
func storeCert(t *testing.T, dir, host string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(dir, "certificates", "acme-v02.example-directory", host)
	os.MkdirAll(d, 0o700)
	os.WriteFile(filepath.Join(d, host+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(d, host+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

// TestHAProxyAccepts: Debian's HAProxy (`haproxy -c`) accepts what
// renderHAProxy writes, with certificates from Caddy's storage, the
// default app, maintenance, a static site, the webhook and a base domain.
func TestHAProxyAccepts(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy is not installed (scripts/setup.sh installs it)")
	}
	storage := t.TempDir()
	storeCert(t, storage, "a.example.com")
	storeCert(t, storage, "b-prod.apps.example.net")
	for _, c := range []struct {
		name string
		in   Input
	}{
		{"nothing deployed", Input{}},
		{"one app on the bare address", Input{Envs: []Env{env("hello", "prod", nil, "127.0.0.1:10000", "127.0.0.1:10001")}}},
		{"certificates, default app, webhook, maintenance, static", Input{
			Proxy:    state.Proxy{BaseDomain: "apps.example.net", DefaultApp: "b/prod"},
			Webhook:  "127.0.0.1:9100",
			CertFile: CertFileIn(storage),
			Envs: []Env{
				{AppEnv: state.AppEnv{App: "a", Env: "prod"}, Domains: []string{"a.example.com", "www.a.example.com"}, Git: true, Live: true, Upstreams: Upstreams{Web: []string{"127.0.0.1:10002"}, Draining: []string{"127.0.0.1:10003"}}},
				env("b", "prod", nil, "127.0.0.1:10004"),
				{AppEnv: state.AppEnv{App: "c", Env: "staging"}, Maintenance: true, Live: true, Upstreams: Upstreams{Web: []string{"127.0.0.1:10005"}}},
				{AppEnv: state.AppEnv{App: "site", Env: "prod"}, Domains: []string{"site.example.org"}, Live: true, Upstreams: Upstreams{Static: "/var/cloud/sys/static/site/prod/v1"}},
			},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, _ := Render(c.in)
			f := filepath.Join(t.TempDir(), "haproxy.cfg")
			os.WriteFile(f, cfg.HAProxy, 0o644)
			if out, err := exec.Command(bin, "-c", "-f", f).CombinedOutput(); err != nil {
				t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, cfg.HAProxy)
			}
			if c.in.CertFile != nil && !strings.Contains(string(cfg.HAProxy), "frontend https") {
				t.Errorf("certificates issued, no HTTPS frontend:\n%s", cfg.HAProxy)
			}
		})
	}
}

// TestRenderFollowsRenewal: a renewed certificate (new content, same
// file) changes the configuration, so the planner reloads HAProxy.
func TestRenderFollowsRenewal(t *testing.T) {
	storage := t.TempDir()
	storeCert(t, storage, "a.example.com")
	in := Input{CertFile: CertFileIn(storage), Envs: []Env{env("a", "prod", []string{"a.example.com"}, "127.0.0.1:10000")}}
	before, _ := Render(in)
	storeCert(t, storage, "a.example.com")
	after, _ := Render(in)
	if before.Equal(after) {
		t.Error("a renewed certificate leaves the configuration as it was")
	}
}

// TestHAProxyCertPathInjection: a certificate path that would add syntax
// to HAProxy's configuration (a newline and a directive, a space and a
// second crt, a comment) is left out, with a note; the name is served over
// HTTP as before.
func TestHAProxyCertPathInjection(t *testing.T) {
	for _, bad := range []string{
		"/var/lib/jecloud-proxy/data/certificates/x\n    stats socket /tmp/s level admin\n/a.crt",
		"/var/lib/jecloud-proxy/data/certificates/x crt /etc/ssl/private/other.pem/a.crt",
		"/var/lib/jecloud-proxy/data/certificates/x#y/a.crt",
		"relative/a.crt",
	} {
		in := Input{CertFile: func(string) string { return bad }, Envs: []Env{env("a", "prod", []string{"a.example.com"}, "127.0.0.1:10000")}}
		cfg, notes := Render(in)
		if strings.Contains(string(cfg.HAProxy), "stats socket") || strings.Contains(string(cfg.HAProxy), "frontend https") || strings.Contains(string(cfg.HAProxy), "redirect") {
			t.Errorf("certificate path %q reached the configuration:\n%s", bad, cfg.HAProxy)
		}
		if len(notes) != 1 || !strings.Contains(notes[0], "is not served") {
			t.Errorf("certificate path %q: notes %q", bad, notes)
		}
	}
}
