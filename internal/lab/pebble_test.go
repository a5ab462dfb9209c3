package lab

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/netip"
	"testing"
)

// TestPebble starts the harness on loopback: the directory answers over
// HTTPS signed by the CA made for it, its root is served, and its DNS
// answers a name mapped with AddA.
func TestPebble(t *testing.T) {
	p := StartPebble(t, netip.MustParseAddr("127.0.0.1"), PebbleOptions{})
	b, err := p.get(p.Directory)
	if err != nil {
		t.Fatal(err)
	}
	var dir map[string]any
	if err := json.Unmarshal(b, &dir); err != nil || dir["newOrder"] == nil {
		t.Fatalf("directory %s: %s (%v)", p.Directory, b, err)
	}
	root, err := p.Root()
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(root)
	if blk == nil {
		t.Fatalf("root is not PEM: %q", root)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || !c.IsCA {
		t.Fatalf("root: %v (CA %v)", err, c != nil && c.IsCA)
	}
	want := netip.MustParseAddr("10.11.12.13")
	if err := p.AddA("shop.example.test", want); err != nil {
		t.Fatal(err)
	}
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, p.dnsAddr)
	}}
	addrs, err := r.LookupNetIP(t.Context(), "ip4", "shop.example.test")
	if err != nil || len(addrs) != 1 || addrs[0] != want {
		t.Fatalf("lookup shop.example.test: %v %v, want %v", addrs, err, want)
	}
	t.Logf("pebble at %s, root %q", p.Directory, c.Subject.CommonName)
	p.Stop()
	if _, err := p.Root(); err == nil {
		t.Errorf("pebble still answers after Stop")
	}
}
