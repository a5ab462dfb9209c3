// Package sshdtest runs a real OpenSSH server on loopback for tests: its own
// host keys, config, pid file and authorized_keys in a temporary directory,
// run as the current user. It also makes a HOME with a client key that the
// server accepts.
package sshdtest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHD is the path of the OpenSSH server.
const SSHD = "/usr/sbin/sshd"

// Server is a running sshd.
type Server struct {
	Host         string // 127.0.0.1
	Port         int
	Dir          string
	User         string          // the current user, who may log in
	HostKeys     []ssh.PublicKey // ed25519 first, then ecdsa
	ClientKey    string          // path of a private key the server accepts
	ClientSigner ssh.Signer
	log          *bytes.Buffer
	logMu        *sync.Mutex
}

// Options change the server.
type Options struct {
	// ECDSA also gives the server an ECDSA host key.
	ECDSA bool
}

// Start starts sshd and stops it when the test ends. Without sshd the test
// is skipped, unless CI is set, where it fails.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if _, err := os.Stat(SSHD); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing (apt-get install -y openssh-server): %v", SSHD, err)
		}
		t.Skipf("%s is missing (apt-get install -y openssh-server)", SSHD)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if u.Uid == "0" {
		// Privilege separation wants this directory when sshd runs as root.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	s := &Server{Host: "127.0.0.1", Dir: dir, User: u.Username, log: &bytes.Buffer{}, logMu: &sync.Mutex{}}

	var hostKeyLines []string
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostKeyLines = append(hostKeyLines, "HostKey "+writeKey(t, dir, "host_ed25519", edPriv))
	s.HostKeys = append(s.HostKeys, mustPub(t, edPub))
	if o.ECDSA {
		ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		hostKeyLines = append(hostKeyLines, "HostKey "+writeKey(t, dir, "host_ecdsa", ec))
		s.HostKeys = append(s.HostKeys, mustPub(t, &ec.PublicKey))
	}

	clientPub, clientPriv, _ := ed25519.GenerateKey(rand.Reader)
	s.ClientKey = writeKey(t, dir, "client_ed25519", clientPriv)
	s.ClientSigner, err = ssh.NewSignerFromKey(clientPriv)
	if err != nil {
		t.Fatal(err)
	}
	auth := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(auth, ssh.MarshalAuthorizedKey(mustPub(t, clientPub)), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Port = freePort(t)
	cfg := filepath.Join(dir, "sshd_config")
	conf := strings.Join(append(hostKeyLines,
		"ListenAddress 127.0.0.1",
		"PidFile "+filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile "+auth,
		"StrictModes no",
		"UsePAM no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"AllowTcpForwarding yes",
		"LogLevel VERBOSE",
		"",
	), "\n")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(SSHD, "-D", "-e", "-f", cfg, "-p", strconv.Itoa(s.Port))
	pr, pw, _ := os.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.logMu.Lock()
			s.log.WriteString(sc.Text() + "\n")
			s.logMu.Unlock()
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("sshd log:\n%s", s.Log())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("sshd exited: %v\n%s", err, s.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %s: %v\n%s", s.Addr(), err, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Log returns what sshd logged so far.
func (s *Server) Log() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

// KnownHostsLines returns known_hosts lines for the server's keys under
// the given host names (default: [127.0.0.1]:PORT).
func (s *Server) KnownHostsLines(hosts ...string) string {
	if len(hosts) == 0 {
		hosts = []string{s.Addr()}
	}
	var b strings.Builder
	for _, k := range s.HostKeys {
		b.WriteString(KnownHostsLine(hosts, k))
	}
	return b.String()
}

// KnownHostsLine returns one known_hosts line for key under hosts ("host:port" or "host").
func KnownHostsLine(hosts []string, key ssh.PublicKey) string {
	norm := make([]string, len(hosts))
	for i, h := range hosts {
		if _, _, err := net.SplitHostPort(h); err == nil {
			norm[i] = normalize(h)
		} else {
			norm[i] = h
		}
	}
	return strings.Join(norm, ",") + " " + string(ssh.MarshalAuthorizedKey(key))
}

func normalize(hostport string) string {
	h, p, _ := net.SplitHostPort(hostport)
	if p == "22" {
		return h
	}
	return "[" + h + "]:" + p
}

// Home makes a home directory with .ssh/id_ed25519 (the key the server
// accepts) and .ssh/known_hosts holding knownHosts. It returns its path.
func (s *Server) Home(t testing.TB, knownHosts string) string {
	t.Helper()
	home := t.TempDir()
	dot := filepath.Join(home, ".ssh")
	if err := os.MkdirAll(dot, 0o700); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(s.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	WriteFile(t, filepath.Join(dot, "id_ed25519"), string(key), 0o600)
	WriteFile(t, filepath.Join(dot, "known_hosts"), knownHosts, 0o600)
	return home
}

// WriteFile writes a file or fails the test.
func WriteFile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func writeKey(t testing.TB, dir, name string, key any) string {
	t.Helper()
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustPub(t testing.TB, k any) ssh.PublicKey {
	t.Helper()
	p, err := ssh.NewPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WriteEncryptedKey writes a passphrase-protected copy of a new key to path.
func WriteEncryptedKey(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	WriteFile(t, path, string(pem.EncodeToMemory(block)), 0o600)
	return mustPub(t, pub)
}
