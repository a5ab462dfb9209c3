package push

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/jecloud/jecloud/internal/gitdeploy"
	"github.com/jecloud/jecloud/internal/shellquote"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// GitSetup is what `jepush git:setup` did on each server.
type GitSetup struct {
	Secret string        `json:"secret"`
	Hosts  []GitSetupOne `json:"hosts"`
}

// GitSetupOne is one server's part: its deploy key and webhook URL.
type GitSetupOne struct {
	Host       string `json:"host"`
	PublicKey  string `json:"public_key"`
	WebhookURL string `json:"webhook_url"`
	Socket     string `json:"socket"`
	// Listen is where the webhook's socket listens on the server:
	// 127.0.0.1:PORT (loopback only: GitHub reaches it through a reverse
	// proxy with TLS there, and WebhookURL is that proxy's https URL), or
	// PORT (all addresses, --listen-all; or an agent from before issue
	// #17); "" when no socket was installed (no systemd there).
	Listen string `json:"listen,omitempty"`
}

// Loopback reports whether the webhook listens on loopback only.
func (h GitSetupOne) Loopback() bool { return strings.HasPrefix(h.Listen, "127.0.0.1:") }

// SetupGit makes every target follow branch of repo: one new webhook
// secret for the environment, a deploy key per server (made there), and
// the git server's host keys, read from knownHostsFiles.
//
// The webhook's socket listens on loopback only unless listenAll.
func (c *Client) SetupGit(ctx context.Context, repo, branch string, port int, listenAll bool, knownHostsFiles []string) (*GitSetup, error) {
	keys, err := GitHostKeys(repo, knownHostsFiles)
	if err != nil {
		return nil, err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	out := &GitSetup{Secret: hex.EncodeToString(b[:])}
	in, err := json.Marshal(gitdeploy.SetupRequest{Secret: out.Secret, KnownHosts: keys})
	if err != nil {
		return nil, err
	}
	argv := []string{"git", "setup", c.App, c.Env, "--repo", repo, "--branch", branch, "--port", fmt.Sprint(port), "--json"}
	if listenAll {
		argv = append(argv, "--listen-all")
	}
	for _, t := range c.Targets {
		r, err := c.open(ctx, t)
		if err != nil {
			return out, err
		}
		var stdout bytes.Buffer
		tl := &tail{}
		err = r.Run(ctx, argv, bytes.NewReader(in), &stdout, tl)
		r.Close()
		if err != nil {
			return out, explain(t.Name(), argv[:2], err, tl)
		}
		var res struct {
			PublicKey string   `json:"public_key"`
			Path      string   `json:"path"`
			Port      int      `json:"port"`
			Socket    string   `json:"socket"`
			Listen    string   `json:"listen"`
			Domains   []string `json:"domains"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			return out, fmt.Errorf("%s: jeagent git setup answered %q: %w (is jeagent up to date there?)", t.Name(), stdout.String(), err)
		}
		one := GitSetupOne{Host: t.Name(), PublicKey: res.PublicKey, Socket: res.Socket, Listen: res.Listen,
			WebhookURL: "http://" + net.JoinHostPort(hostOf(t.Dest), fmt.Sprint(res.Port)) + res.Path}
		if one.Loopback() {
			// Through the front door (docs/routing.md): the environment's
			// first host name, else the server's.
			host := hostOf(t.Dest)
			if len(res.Domains) > 0 {
				host = res.Domains[0]
			}
			one.WebhookURL = "https://" + host + res.Path
		}
		out.Hosts = append(out.Hosts, one)
	}
	return out, nil
}

// hostOf is the host name of an SSH destination (user@host:port).
func hostOf(dest string) string {
	if _, h, ok := strings.Cut(dest, "@"); ok {
		dest = h
	}
	if h, _, err := net.SplitHostPort(dest); err == nil {
		return h
	}
	return dest
}

// GitHostKeys returns, as known_hosts lines, the host keys on record for
// repo's server in files (jepush gives the user's ~/.ssh/known_hosts
// unless --known-hosts names others): the server will only fetch from a
// host whose key it was given.
func GitHostKeys(repo string, files []string) (string, error) {
	ep, err := gitdeploy.Endpoint(repo)
	if err != nil {
		return "", err
	}
	var existing []string
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		}
	}
	addr := net.JoinHostPort(ep, "22")
	if h, p, err := net.SplitHostPort(ep); err == nil { // "[host]:port"
		addr = net.JoinHostPort(h, p)
	}
	var lines []string
	if len(existing) > 0 {
		db, err := knownhosts.New(existing...)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", strings.Join(existing, ", "), err)
		}
		// Ask about a key nobody has: the error lists the keys on record.
		probe, err := randomKey()
		if err != nil {
			return "", err
		}
		var ke *knownhosts.KeyError
		if errors.As(db(addr, &net.TCPAddr{IP: net.IPv4zero}, probe), &ke) {
			for _, k := range ke.Want {
				lines = append(lines, knownhosts.Line([]string{knownhosts.Normalize(addr)}, k.Key))
			}
		}
	}
	if len(lines) == 0 {
		return "", fmt.Errorf("no host key for %s in %s: connect to it once (%s) and check the fingerprint it shows, or give --known-hosts FILE",
			ep, strings.Join(files, ", "), sshCommand(repo))
	}
	return strings.Join(lines, "\n") + "\n", nil
}

// sshCommand is the ssh command that connects to repo's server once.
func sshCommand(repo string) string {
	if rest, ok := strings.CutPrefix(repo, "ssh://"); ok {
		dest, _, _ := strings.Cut(rest, "/")
		if at := strings.LastIndex(dest, "@"); at >= 0 {
			if h, p, err := net.SplitHostPort(dest[at+1:]); err == nil {
				return "ssh -T -p " + p + " " + shellquote.Quote(dest[:at+1]+h)
			}
		} else if h, p, err := net.SplitHostPort(dest); err == nil {
			return "ssh -T -p " + p + " " + shellquote.Quote(h)
		}
		return "ssh -T " + shellquote.Quote(dest)
	}
	host, _, _ := strings.Cut(repo, ":")
	return "ssh -T " + shellquote.Quote(host)
}

func randomKey() (ssh.PublicKey, error) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return ssh.NewPublicKey(pub)
}
