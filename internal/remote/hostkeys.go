package remote

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/jecloud/jecloud/internal/shellquote"
)

// HostKeyError stops a connection whose host key is not known, has changed
// or is revoked. Its message says what to do.
type HostKeyError struct {
	Host    string // as the user wrote it
	Addr    string // host and port checked in known_hosts
	Kind    string // "unknown", "changed" or "revoked"
	Offered ssh.PublicKey
	Known   []knownhosts.KnownKey // the keys on record (changed, revoked)
	Files   []string              // the known_hosts files read
	// NotStrict: the ssh config asked for StrictHostKeyChecking no or
	// accept-new, which jepush does not honour.
	NotStrict bool
}

func (e *HostKeyError) Error() string {
	var b strings.Builder
	offered := keyDesc(e.Offered)
	host, port := splitAddr(e.Addr)
	switch e.Kind {
	case "unknown":
		fmt.Fprintf(&b, "host key of %s (%s) is unknown: it is in none of %s, so jepush cannot tell that it is the server you mean.\n",
			e.Host, e.Addr, strings.Join(e.Files, ", "))
		fmt.Fprintf(&b, "The server offered %s.\n", offered)
		b.WriteString("Check that fingerprint with whoever runs the server (on the server: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then either\n")
		if port == "22" {
			fmt.Fprintf(&b, "  connect once with ssh and answer yes:  ssh %s\n", e.Host)
			fmt.Fprintf(&b, "  or add its keys:  ssh-keyscan %s >> ~/.ssh/known_hosts", host)
		} else {
			fmt.Fprintf(&b, "  connect once with ssh and answer yes:  ssh -p %s %s\n", port, e.Host)
			fmt.Fprintf(&b, "  or add its keys:  ssh-keyscan -p %s %s >> ~/.ssh/known_hosts", port, host)
		}
		if e.NotStrict {
			b.WriteString("\n(StrictHostKeyChecking in your ssh config is not honoured: jepush always checks host keys)")
		}
	case "changed":
		fmt.Fprintf(&b, "WARNING: HOST KEY OF %s (%s) HAS CHANGED. Someone may be intercepting the connection, or the server was reinstalled.\n",
			e.Host, e.Addr)
		fmt.Fprintf(&b, "The server offered %s; on record:\n", offered)
		for _, k := range e.Known {
			fmt.Fprintf(&b, "  %s:%d  %s\n", k.Filename, k.Line, keyDesc(k.Key))
		}
		b.WriteString("jepush stopped before sending anything. If you know why the key changed, remove the old entry")
		if len(e.Known) > 0 {
			fmt.Fprintf(&b, " (line %d of %s, or: ssh-keygen -R %s)", e.Known[0].Line, e.Known[0].Filename, shellquote.Quote(knownhosts.Normalize(e.Addr)))
		}
		b.WriteString(" and add the new key after checking its fingerprint.")
	case "revoked":
		fmt.Fprintf(&b, "host key of %s (%s) is REVOKED (%s:%d): %s; jepush stopped before sending anything",
			e.Host, e.Addr, e.Known[0].Filename, e.Known[0].Line, offered)
	}
	return b.String()
}

func keyDesc(k ssh.PublicKey) string {
	if k == nil {
		return "no key"
	}
	return fmt.Sprintf("%s key %s", k.Type(), ssh.FingerprintSHA256(k))
}

func splitAddr(addr string) (host, port string) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, "22"
	}
	return h, p
}

// hostKeys checks a host's key against known_hosts, strictly.
type hostKeys struct {
	hc       *hostConfig
	addr     string // host:port looked up in known_hosts
	files    []string
	db       ssh.HostKeyCallback
	algos    []string
	mismatch *HostKeyError
}

func newHostKeys(hc *hostConfig) (*hostKeys, error) {
	h := &hostKeys{hc: hc, addr: hc.Addr()}
	if hc.HostKeyAlias != "" {
		// As OpenSSH: the alias stands for host and port, as written
		// ("name", or "[name]:port" as known_hosts writes it).
		h.addr = net.JoinHostPort(hc.HostKeyAlias, "22")
		if host, port, err := net.SplitHostPort(hc.HostKeyAlias); err == nil && strings.HasPrefix(hc.HostKeyAlias, "[") {
			h.addr = net.JoinHostPort(host, port)
		}
	}
	var existing []string
	for _, f := range hc.KnownHostsFiles {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		}
	}
	h.files = hc.KnownHostsFiles[:1]
	if len(existing) > 0 {
		h.files = existing
	}
	db, err := knownhosts.New(existing...)
	if err != nil {
		return nil, fmt.Errorf("read known_hosts: %w (fix or remove that line)", err)
	}
	h.db = db
	h.algos = h.knownAlgorithms()
	return h, nil
}

// knownAlgorithms returns the host key algorithms matching the keys on
// record for the host, so that a server with several keys shows the one
// we know rather than failing with a mismatch. Nil when none are known.
func (h *hostKeys) knownAlgorithms() []string {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if !errors.As(h.db(h.addr, zeroAddr, probe), &ke) || len(ke.Want) == 0 {
		return nil
	}
	want := map[string]bool{}
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			want[ssh.KeyAlgoRSASHA512], want[ssh.KeyAlgoRSASHA256], want[ssh.KeyAlgoRSA] = true, true, true
		default:
			want[t] = true
		}
	}
	var algos []string
	for _, a := range ssh.SupportedAlgorithms().HostKeys {
		if want[a] {
			algos = append(algos, a)
		}
	}
	for _, a := range ssh.InsecureAlgorithms().HostKeys {
		if want[a] {
			algos = append(algos, a)
		}
	}
	return algos
}

var zeroAddr = &net.TCPAddr{IP: net.IPv4zero}

// check is the ssh.HostKeyCallback.
func (h *hostKeys) check(_ string, remote net.Addr, key ssh.PublicKey) error {
	err := h.db(h.addr, remote, key)
	if err == nil {
		return nil
	}
	he := &HostKeyError{Host: h.hc.Alias, Addr: h.addr, Offered: key, Files: h.files, NotStrict: h.hc.NotStrict}
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		he.Kind, he.Known = "revoked", []knownhosts.KnownKey{re.Revoked}
	case errors.As(err, &ke) && len(ke.Want) == 0:
		he.Kind = "unknown"
	case errors.As(err, &ke):
		he.Kind, he.Known = "changed", ke.Want
	default:
		return fmt.Errorf("check host key of %s: %w", h.hc.Alias, err)
	}
	return he
}
