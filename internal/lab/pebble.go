package lab

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Pebble is Let's Encrypt's test CA (Debian's pebble package) running on
// the host for one test, with pebble-challtestsrv as its DNS: the names a
// test maps with AddA resolve to a lab server, so Pebble's validation
// (HTTP-01 on port 80, TLS-ALPN-01 on port 443) really reaches that
// server's front door. See /work/shared/TESTING.md "Front door".
type Pebble struct {
	// Directory is the ACME directory URL (https://ADDR:PORT/dir), for
	// server.json's proxy.acme.ca.
	Directory string
	// CARoot is the PEM of the CA that signs Pebble's own HTTPS (made for
	// the test), for proxy.acme.ca_root: copy it onto the server.
	CARoot []byte

	dir, mgmt, dnsMgmt, dnsAddr string
	addr                        netip.Addr
	opts                        PebbleOptions
	client                      *http.Client
	pebble, dns                 *exec.Cmd
}

// PebbleOptions change how Pebble runs.
type PebbleOptions struct {
	// Blocklist: names Pebble refuses to issue for (the order is refused
	// with "rejectedIdentifier").
	Blocklist []string
	// HTTPPort and TLSPort are where Pebble validates HTTP-01 and
	// TLS-ALPN-01 challenges (0: 80 and 443, a server's front door).
	HTTPPort, TLSPort int
}

// StartPebble starts Pebble listening on addr (a lab server's HostAddr,
// so that the server reaches it) and its DNS on loopback. Both are
// stopped, by pid, when the test ends. It skips the test when Debian's
// pebble package is missing.
func StartPebble(t testing.TB, addr netip.Addr, o PebbleOptions) *Pebble {
	t.Helper()
	for _, bin := range []string{"pebble", "pebble-challtestsrv"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (Debian package pebble; scripts/setup.sh installs it)", bin)
		}
	}
	if o.HTTPPort == 0 {
		o.HTTPPort = 80
	}
	if o.TLSPort == 0 {
		o.TLSPort = 443
	}
	p := &Pebble{dir: t.TempDir(), addr: addr, opts: o}
	if err := p.start(t); err != nil {
		t.Fatalf("start pebble: %v", err)
	}
	t.Cleanup(p.Stop)
	return p
}

func (p *Pebble) start(t testing.TB) error {
	caPEM, certPEM, keyPEM, err := pebbleTLS(p.addr)
	if err != nil {
		return err
	}
	p.CARoot = caPEM
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	p.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	files := map[string][]byte{"ca.pem": caPEM, "cert.pem": certPEM, "key.pem": keyPEM}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(p.dir, name), b, 0o600); err != nil {
			return err
		}
	}
	acmePort, err := freePort("tcp", p.addr)
	if err != nil {
		return err
	}
	mgmtPort, err := freePort("tcp", p.addr)
	if err != nil {
		return err
	}
	lo := netip.MustParseAddr("127.0.0.1")
	dnsPort, err := freePort("udp", lo)
	if err != nil {
		return err
	}
	dnsMgmtPort, err := freePort("tcp", lo)
	if err != nil {
		return err
	}
	acme := netip.AddrPortFrom(p.addr, acmePort).String()
	mgmt := netip.AddrPortFrom(p.addr, mgmtPort).String()
	p.Directory = "https://" + acme + "/dir"
	p.mgmt = "https://" + mgmt
	p.dnsMgmt = "http://" + netip.AddrPortFrom(lo, dnsMgmtPort).String()
	cfg, _ := json.MarshalIndent(map[string]any{"pebble": map[string]any{
		"listenAddress":                  acme,
		"managementListenAddress":        mgmt,
		"certificate":                    filepath.Join(p.dir, "cert.pem"),
		"privateKey":                     filepath.Join(p.dir, "key.pem"),
		"httpPort":                       p.opts.HTTPPort,
		"tlsPort":                        p.opts.TLSPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"domainBlocklist":                append([]string{}, p.opts.Blocklist...),
	}}, "", "  ")
	cfgFile := filepath.Join(p.dir, "pebble.json")
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		return err
	}

	dnsAddr := netip.AddrPortFrom(lo, dnsPort).String()
	p.dnsAddr = dnsAddr
	// Only the DNS server: Pebble validates against the lab server.
	p.dns = exec.Command("pebble-challtestsrv", "-dns01", dnsAddr, "-management", netip.AddrPortFrom(lo, dnsMgmtPort).String(),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv6", "")
	if err := p.run(p.dns, "challtestsrv.log"); err != nil {
		return err
	}
	p.pebble = exec.Command("pebble", "-config", cfgFile, "-dnsserver", dnsAddr)
	// No random wait before validating, no nonces refused on purpose
	// (Caddy retries them, but a test wants one order, now).
	p.pebble.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	if err := p.run(p.pebble, "pebble.log"); err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, errDir := p.get(p.Directory)
		_, errDNS := http.Get(p.dnsMgmt + "/")
		if errDir == nil && errDNS == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pebble did not answer in 15 s (%v; %v):\n%s", errDir, errDNS, p.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *Pebble) run(cmd *exec.Cmd, log string) error {
	f, err := os.Create(filepath.Join(p.dir, log))
	if err != nil {
		return err
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	return cmd.Start()
}

// Logs returns the end of Pebble's and its DNS server's output.
func (p *Pebble) Logs() string {
	var b strings.Builder
	for _, name := range []string{"pebble.log", "challtestsrv.log"} {
		out, _ := os.ReadFile(filepath.Join(p.dir, name))
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		fmt.Fprintf(&b, "--- %s (last 30 lines)\n%s\n", name, strings.Join(lines[max(0, len(lines)-30):], "\n"))
	}
	return b.String()
}

// Stop stops Pebble and its DNS server (by pid); a Pebble started again
// has new roots. Safe to call twice.
func (p *Pebble) Stop() {
	for _, c := range []*exec.Cmd{p.pebble, p.dns} {
		if c != nil && c.Process != nil && c.ProcessState == nil {
			c.Process.Kill()
			c.Wait()
		}
	}
}

// AddA makes Pebble's DNS answer host with ip.
func (p *Pebble) AddA(host string, ip netip.Addr) error {
	body, _ := json.Marshal(map[string]any{"host": strings.TrimSuffix(host, ".") + ".", "addresses": []string{ip.String()}})
	resp, err := http.Post(p.dnsMgmt+"/add-a", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("challtestsrv add-a %s: %s %s", host, resp.Status, b)
	}
	return nil
}

// Root returns the PEM of the root that Pebble's certificates chain to
// (its management API's /roots/0; new at every start).
func (p *Pebble) Root() ([]byte, error) {
	return p.get(p.mgmt + "/roots/0")
}

func (p *Pebble) get(url string) ([]byte, error) {
	resp, err := p.client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, nil
}

// freePort returns a port that was free on addr a moment ago.
func freePort(network string, addr netip.Addr) (uint16, error) {
	if network == "udp" {
		c, err := net.ListenPacket("udp", netip.AddrPortFrom(addr, 0).String())
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return netip.MustParseAddrPort(c.LocalAddr().String()).Port(), nil
	}
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return netip.MustParseAddrPort(l.Addr().String()).Port(), nil
}

// pebbleTLS makes a CA and, signed by it, Pebble's HTTPS certificate for
// addr (and localhost, 127.0.0.1).
func pebbleTLS(addr netip.Addr) (caPEM, certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "jecloud lab pebble CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	ca, _ = x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "pebble"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames:    []string{"localhost", "pebble"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), addr.AsSlice()},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}
