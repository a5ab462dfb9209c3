package remote_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/jecloud/jecloud/internal/remote"
	"github.com/jecloud/jecloud/internal/remote/sshdtest"
)

// echoAgent stands in for jeagent: it prints its arguments one a line.
const echoAgent = "printf '%s\\n'"

// opts are the options of a user whose home is home; the login name is
// the user running the test, as sshdtest's server expects (jepush's
// command layer gives the user's own).
func opts(home string) remote.SSHOptions {
	o := remote.SSHOptions{Home: home, SystemConfigFile: "none", GlobalKnownHostsFiles: []string{}}
	if u, err := user.Current(); err == nil {
		o.LocalUser = u.Username
	}
	return o
}

func dest(s *sshdtest.Server) string { return fmt.Sprintf("%s@%s", s.User, s.Addr()) }

// run connects and runs the echo agent with argv, returning its output.
func run(t *testing.T, target remote.Target, o remote.SSHOptions, argv ...string) (string, error) {
	t.Helper()
	ctx := context.Background()
	r, err := remote.Open(ctx, target, o)
	if err != nil {
		return "", err
	}
	defer r.Close()
	var out, stderr bytes.Buffer
	err = r.Run(ctx, argv, nil, &out, &stderr)
	return out.String() + stderr.String(), err
}

func TestSSHHostKeys(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{ECDSA: true})
	other := sshdtest.Start(t, sshdtest.Options{}) // for a key that is not s's
	for _, tc := range []struct {
		name       string
		knownHosts string
		err        []string // all in the error; nil: success
	}{
		{name: "known", knownHosts: s.KnownHostsLines()},
		{name: "only the second key type known", knownHosts: sshdtest.KnownHostsLine([]string{s.Addr()}, s.HostKeys[1])},
		{name: "unknown", knownHosts: "",
			err: []string{"is unknown", fmt.Sprintf("ssh-keyscan -p %d 127.0.0.1 >> ~/.ssh/known_hosts", s.Port), "SHA256:"}},
		{name: "other hosts only", knownHosts: sshdtest.KnownHostsLine([]string{"[127.0.0.1]:1"}, s.HostKeys[0]),
			err: []string{"is unknown"}},
		{name: "changed", knownHosts: "# a comment\n" + sshdtest.KnownHostsLine([]string{s.Addr()}, other.HostKeys[0]),
			err: []string{"HAS CHANGED", "known_hosts:2", "ssh-keygen -R"}},
		{name: "revoked", knownHosts: "@revoked * " + string(ssh.MarshalAuthorizedKey(s.HostKeys[0])) +
			"@revoked * " + string(ssh.MarshalAuthorizedKey(s.HostKeys[1])) + s.KnownHostsLines(),
			err: []string{"REVOKED"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := s.Home(t, tc.knownHosts)
			out, err := run(t, remote.Target{Dest: dest(s), Agent: echoAgent}, opts(home), "has", "my app", "prod")
			if tc.err == nil {
				if err != nil {
					t.Fatal(err)
				}
				if out != "has\nmy app\nprod\n" {
					t.Errorf("output %q", out)
				}
				return
			}
			var he *remote.HostKeyError
			if !errors.As(err, &he) {
				t.Fatalf("error %v, want a HostKeyError", err)
			}
			for _, want := range tc.err {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q:\n%v", want, err)
				}
			}
		})
	}
}

func TestSSHConfigAlias(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	home := s.Home(t, s.KnownHostsLines())
	// The key only under another name, so that only IdentityFile finds it.
	keyDir := filepath.Join(home, "keys")
	os.MkdirAll(keyDir, 0o700)
	os.Rename(filepath.Join(home, ".ssh", "id_ed25519"), filepath.Join(keyDir, "deploy"))
	sshdtest.WriteFile(t, filepath.Join(home, ".ssh", "config"), fmt.Sprintf(`
Host myserver
    HostName 127.0.0.1
    Port %d
    User %s
    IdentityFile ~/keys/deploy
`, s.Port, s.User), 0o600)
	out, err := run(t, remote.Target{Dest: "myserver", Agent: echoAgent, Root: "/srv/cloud"}, opts(home), "status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if out != "--root\n/srv/cloud\nstatus\n--json\n" {
		t.Errorf("output %q", out)
	}

	// Without the IdentityFile line the default identities do not have it.
	sshdtest.WriteFile(t, filepath.Join(home, ".ssh", "config"), fmt.Sprintf("Host myserver\n HostName 127.0.0.1\n Port %d\n", s.Port), 0o600)
	_, err = run(t, remote.Target{Dest: "myserver", Agent: echoAgent}, opts(home), "status")
	if err == nil || !strings.Contains(err.Error(), "no SSH key to offer") {
		t.Errorf("no key: %v", err)
	}
}

func TestSSHProxyJump(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	// The target's name is only known through the jump host: known_hosts
	// has it under its alias (HostKeyAlias) and the jump host by address.
	home := s.Home(t, s.KnownHostsLines()+sshdtest.KnownHostsLine([]string{"inner"}, s.HostKeys[0]))
	sshdtest.WriteFile(t, filepath.Join(home, ".ssh", "config"), fmt.Sprintf(`
Host target
    HostName 127.0.0.1
    Port %[1]d
    HostKeyAlias inner
    ProxyJump jump
Host jump
    HostName 127.0.0.1
    Port %[1]d
`, s.Port), 0o600)
	if _, err := run(t, remote.Target{Dest: "target", Agent: echoAgent}, opts(home), "has"); err != nil {
		t.Fatal(err)
	}
	// Two logins: the jump host's and the target's, through it.
	deadline := time.Now().Add(2 * time.Second)
	for strings.Count(s.Log(), "Accepted publickey") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(s.Log(), "Accepted publickey"); n != 2 {
		t.Errorf("%d logins, want 2 (jump host and target)", n)
	}
	if !strings.Contains(s.Log(), "direct-tcpip") && !strings.Contains(s.Log(), "connect_to") {
		t.Logf("sshd log does not mention the forwarding:\n%s", s.Log())
	}
}

func TestSSHAgentAndPassphrase(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	home := s.Home(t, s.KnownHostsLines())
	// The only identity file has a passphrase: skipped, with a note.
	os.Remove(filepath.Join(home, ".ssh", "id_ed25519"))
	sshdtest.WriteEncryptedKey(t, filepath.Join(home, ".ssh", "id_ed25519"))
	o := opts(home)
	_, err := run(t, remote.Target{Dest: dest(s), Agent: echoAgent}, o, "has")
	if err == nil || !strings.Contains(err.Error(), "has a passphrase") || !strings.Contains(err.Error(), "ssh-add") {
		t.Errorf("want a note on the skipped key, got: %v", err)
	}

	// An agent holding the accepted key logs in.
	keyring := agent.NewKeyring()
	priv, err := os.ReadFile(s.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ssh.ParseRawPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := keyring.Add(agent.AddedKey{PrivateKey: raw}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { agent.ServeAgent(keyring, c); c.Close() }()
		}
	}()
	o.AgentSocket = sock
	if _, err := run(t, remote.Target{Dest: dest(s), Agent: echoAgent}, o, "has"); err != nil {
		t.Fatal(err)
	}
}

func TestSSHRefused(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	home := s.Home(t, s.KnownHostsLines())
	sshdtest.WriteFile(t, filepath.Join(home, ".ssh", "config"), "IdentityFile "+filepath.Join(home, "wrong")+"\n", 0o600)
	wrong := sshdtest.Start(t, sshdtest.Options{}) // its client key is not in s's authorized_keys
	b, _ := os.ReadFile(wrong.ClientKey)
	sshdtest.WriteFile(t, filepath.Join(home, "wrong"), string(b), 0o600)
	_, err := run(t, remote.Target{Dest: dest(s), Agent: echoAgent}, opts(home), "has")
	if err == nil || !strings.Contains(err.Error(), "accepted none of the 1 keys") || !strings.Contains(err.Error(), "authorized_keys") {
		t.Errorf("wrong key: %v", err)
	}

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	_, err = run(t, remote.Target{Dest: "x@" + addr, Agent: echoAgent}, opts(home), "has")
	if err == nil || !strings.Contains(err.Error(), "connect to 127.0.0.1") {
		t.Errorf("closed port: %v", err)
	}
}

func TestSSHExitAndCancel(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	home := s.Home(t, s.KnownHostsLines())
	ctx := context.Background()
	r, err := remote.Open(ctx, remote.Target{Dest: dest(s), Agent: `sh -c 'cat >/dev/null; echo "$*" >&2; [ "$1" = sleep ] && exec sleep 5; exit $1' sh`}, opts(home))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var stderr bytes.Buffer
	err = r.Run(ctx, []string{"3", "it's quoted"}, strings.NewReader("in"), io.Discard, &stderr)
	if code, ok := remote.ExitCode(err); !ok || code != 3 {
		t.Errorf("Run = %v, want exit status 3", err)
	}
	if stderr.String() != "3 it's quoted\n" {
		t.Errorf("stderr %q", stderr.String())
	}
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = r.Run(cctx, []string{"sleep"}, nil, io.Discard, io.Discard)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("cancelled Run = %v after %s", err, time.Since(start))
	}
	// The connection is still good for the next command.
	if err := r.Run(ctx, []string{"0"}, nil, io.Discard, io.Discard); err != nil {
		t.Errorf("after a cancelled command: %v", err)
	}
}

func TestSSHKeepalive(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	p := newFreezingProxy(t, s.Addr())
	_, port, _ := net.SplitHostPort(p.addr)
	home := s.Home(t, sshdtest.KnownHostsLine([]string{p.addr}, s.HostKeys[0]))
	o := opts(home)
	o.KeepaliveInterval, o.KeepaliveCountMax = 100*time.Millisecond, 3
	ctx := context.Background()
	r, err := remote.Open(ctx, remote.Target{Dest: s.User + "@127.0.0.1:" + port, Agent: "sleep 5; true"}, o)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, []string{"x"}, nil, io.Discard, io.Discard) }()
	time.Sleep(300 * time.Millisecond) // keepalives answered meanwhile
	p.freeze()
	select {
	case err := <-done:
		if !errors.Is(err, remote.ErrConnectionLost) || !strings.Contains(err.Error(), "connection to "+s.User+"@127.0.0.1:"+port+" lost") {
			t.Errorf("Run = %v, want connection lost", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still waiting 10 s after the network froze")
	}
}

// freezingProxy forwards TCP to a server until freeze, after which it
// keeps the connections open but passes nothing: a dead network.
type freezingProxy struct {
	addr   string
	mu     sync.Mutex
	frozen bool
}

func newFreezingProxy(t *testing.T, to string) *freezingProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p := &freezingProxy{addr: l.Addr().String()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); u.Close() })
			go p.pipe(c, u)
			go p.pipe(u, c)
		}
	}()
	return p
}

func (p *freezingProxy) freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
}

func (p *freezingProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		frozen := p.frozen
		p.mu.Unlock()
		if frozen {
			continue // swallow
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}
