package proxy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/proxy"
)

// writeCert stores a certificate for host as Caddy's file storage does
// (certificates/ISSUER/HOST/HOST.crt, the leaf then its issuer).
func writeCert(t *testing.T, storage, issuerDir, host, issuer string, notAfter time.Time) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: issuer}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: notAfter.Add(-90 * 24 * time.Hour), NotAfter: notAfter.Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{host}, NotBefore: notAfter.Add(-90 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(storage, "certificates", issuerDir, host)
	os.MkdirAll(dir, 0o700)
	b := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	if err := os.WriteFile(filepath.Join(dir, host+".crt"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func logLine(ts time.Time, level, logger, msg, host, extra string) string {
	return fmt.Sprintf(`{"level":%q,"ts":%.6f,"logger":%q,"msg":%q,"identifier":%q%s}`, level, float64(ts.UnixNano())/1e9, logger, msg, host, extra)
}

func TestCertificates(t *testing.T) {
	storage := t.TempDir()
	day := 24 * time.Hour
	expires := time.Now().Add(60 * day).Truncate(time.Second)
	writeCert(t, storage, "acme-v02.api.letsencrypt.org-directory", "shop.example.com", "R11", expires)
	// Two CAs: the one that expires last counts.
	writeCert(t, storage, "acme-staging-v02.api.letsencrypt.org-directory", "blog.example.com", "(STAGING) Old", expires.Add(-30*day))
	writeCert(t, storage, "10.0.0.1-14000-dir", "blog.example.com", "Pebble Intermediate CA 1", expires)
	writeCert(t, storage, "acme-v02.api.letsencrypt.org-directory", "old.example.com", "R10", time.Now().Add(-day))
	os.MkdirAll(filepath.Join(storage, "certificates", "x", "junk.example.com"), 0o700)
	os.WriteFile(filepath.Join(storage, "certificates", "x", "junk.example.com", "junk.example.com.crt"), []byte("not a certificate"), 0o600)

	t0 := time.Now().Add(-time.Hour)
	log := strings.Join([]string{
		"not json at all",
		`{"level":"info","ts":1,"logger":"http.log.access.shop_prod","msg":"handled request"}`,
		logLine(t0, "info", "tls.obtain", "obtaining certificate", "new.example.com", ""),
		// Refused, then refused again: the last reason counts.
		logLine(t0, "error", "tls.obtain", "could not get certificate from issuer", "refused.example.com", `,"error":"HTTP 400 urn:ietf:params:acme:error:rejectedIdentifier - first"`),
		logLine(t0.Add(time.Minute), "error", "tls.obtain", "could not get certificate from issuer", "refused.example.com", `,"error":"HTTP 400 urn:ietf:params:acme:error:rejectedIdentifier - forbidden by policy"`),
		// A challenge the CA could not validate: its reason is added.
		logLine(t0, "error", "http.acme_client", "challenge failed", "dns.example.com", `,"problem_type":"urn:ietf:params:acme:error:connection","error":"dial tcp 10.0.0.9:80: connection refused"`),
		logLine(t0.Add(time.Second), "error", "tls.obtain", "could not get certificate from issuer", "dns.example.com", `,"error":"[dns.example.com] solving challenges: no solvers available for remaining challenges"`),
		// Unreachable CA, then the certificate came.
		logLine(t0, "error", "tls.obtain", "could not get certificate from issuer", "shop.example.com", `,"error":"dial tcp 10.0.0.1:14000: connect: connection refused"`),
		logLine(t0.Add(time.Minute), "info", "tls.obtain", "certificate obtained successfully", "shop.example.com", ""),
		// Issued, and its renewal now fails.
		logLine(t0, "info", "tls.obtain", "certificate obtained successfully", "blog.example.com", ""),
		logLine(t0.Add(time.Minute), "error", "tls.renew", "could not get certificate from issuer", "blog.example.com", `,"error":"HTTP 429 urn:ietf:params:acme:error:rateLimited - too many"`),
		"Dec 04 13:00:00 host caddy[1]: " + logLine(t0, "error", "tls.obtain", "could not get certificate from issuer", "prefixed.example.com", `,"error":"prefixed line"`),
	}, "\n")
	hosts := []string{"shop.example.com", "blog.example.com", "old.example.com", "new.example.com", "refused.example.com", "dns.example.com", "junk.example.com", "prefixed.example.com", "../etc", "*.example.com"}
	got := proxy.Certificates(storage, hosts, strings.NewReader(log))
	want := []struct{ state, issuer, errHas string }{
		{proxy.CertIssued, "R11", ""},
		{proxy.CertIssued, "Pebble Intermediate CA 1", "rateLimited - too many"},
		{proxy.CertExpired, "R10", ""},
		{proxy.CertPending, "", ""},
		{proxy.CertFailing, "", "rejectedIdentifier - forbidden by policy"},
		{proxy.CertFailing, "", "no solvers available for remaining challenges (the CA said: urn:ietf:params:acme:error:connection - dial tcp 10.0.0.9:80: connection refused)"},
		{proxy.CertPending, "", ""},
		{proxy.CertFailing, "", "prefixed line"},
		{proxy.CertPending, "", ""},
		{proxy.CertPending, "", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("%d results for %d hosts", len(got), len(hosts))
	}
	for i, w := range want {
		c := got[i]
		if c.Host != hosts[i] || c.State != w.state || c.Issuer != w.issuer || (w.errHas == "") != (c.Error == "") || !strings.Contains(c.Error, w.errHas) {
			t.Errorf("%s: %+v, want state %s issuer %q error with %q", hosts[i], c, w.state, w.issuer, w.errHas)
		}
		if c.State == proxy.CertIssued && !c.Expires.Equal(expires) {
			t.Errorf("%s expires %v, want %v", hosts[i], c.Expires, expires)
		}
		if c.State == proxy.CertFailing && !c.FailedAt.After(t0.Add(-time.Second)) {
			t.Errorf("%s failed at %v", hosts[i], c.FailedAt)
		}
		t.Logf("%-22s %s", c.Host, c)
	}
	if s := got[0].String(); s != "issued by R11, expires "+expires.UTC().Format(time.DateOnly) {
		t.Errorf("String: %q", s)
	}
}

func TestRepairAccounts(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name    string
		body    string
		age     time.Duration
		removed bool
	}{
		{"valid", `{"status":"valid"}`, time.Hour, false},
		{"written twice", `{"status":"valid"}{"status":"valid"}`, time.Hour, true},
		{"being written", `{"status":`, time.Second, false},
		{"truncated long ago", `{"status":`, 2 * time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storage := t.TempDir()
			dir := filepath.Join(storage, "acme", "ca.example-directory", "users", "ops@example.com")
			os.MkdirAll(dir, 0o700)
			reg := filepath.Join(dir, "ops.json")
			os.WriteFile(reg, []byte(tt.body), 0o600)
			os.WriteFile(filepath.Join(dir, "ops.key"), []byte("key"), 0o600)
			mt := now.Add(-tt.age)
			os.Chtimes(reg, mt, mt)
			notes := proxy.RepairAccounts(storage, now)
			_, err := os.Stat(dir)
			if gone := err != nil; gone != tt.removed {
				t.Errorf("removed = %v, want %v (notes %q)", gone, tt.removed, notes)
			}
			if (len(notes) == 1) != tt.removed {
				t.Errorf("notes %q", notes)
			}
		})
	}
}
