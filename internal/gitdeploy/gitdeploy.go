// Package gitdeploy deploys an app environment from git pushes: a webhook
// (Handler) accepts signed push events for the environment's repository
// and branch and records the commit in app.json; the roll-forward then
// fetches that commit with the environment's deploy key, bundles the tree
// with the same canonical bundler as `jepush bundle` (Build), and deploys
// it like any other version. Setup makes the deploy key and stores the
// webhook's secret. See docs/git.md.
package gitdeploy

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/state"
	"golang.org/x/crypto/ssh"
)

// Files of one app environment, in APP/ENV/git/ (root-only, 0700).
type Files struct{ Dir string }

// FilesOf returns the git files of ae.
func FilesOf(l state.Layout, ae state.AppEnv) Files {
	return Files{Dir: filepath.Join(l.AppDir(ae), "git")}
}

// Key is the deploy key's private half, which git's ssh fetches with.
func (f Files) Key() string { return filepath.Join(f.Dir, "id_ed25519") }

// PublicKey is the deploy key's public half, to add to the repository.
func (f Files) PublicKey() string { return filepath.Join(f.Dir, "id_ed25519.pub") }

// KnownHosts holds the git server's host keys; no other server is fetched from.
func (f Files) KnownHosts() string { return filepath.Join(f.Dir, "known_hosts") }

// Secret is the webhook's shared secret, which signs its deliveries.
func (f Files) Secret() string { return filepath.Join(f.Dir, "webhook.secret") }

// Deliveries keeps the last webhook delivery IDs, so that a replay is ignored.
func (f Files) Deliveries() string { return filepath.Join(f.Dir, "deliveries") }

// Mirror is the bare mirror of the repository that commits are fetched into.
func (f Files) Mirror() string { return filepath.Join(f.Dir, "mirror.git") }

// SetupRequest is what `jeagent git setup` is given.
type SetupRequest struct {
	Repository string `json:"repository"`
	Branch     string `json:"branch"`
	// Secret is the webhook's shared secret (HMAC-SHA256 key).
	Secret string `json:"secret"`
	// KnownHosts are the git server's host keys, known_hosts lines.
	KnownHosts string `json:"known_hosts"`
}

// MinSecret is the shortest secret Setup accepts.
const MinSecret = 16

var branchRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}$`) })

// CheckBranch refuses branch names that git or a command line could
// misread.
func CheckBranch(b string) error {
	if !branchRE().MatchString(b) || strings.Contains(b, "..") || strings.HasSuffix(b, "/") ||
		strings.HasSuffix(b, ".lock") || strings.Contains(b, "//") {
		return fmt.Errorf("branch %q: give a plain branch name such as main or release/1.x", b)
	}
	return nil
}

// Endpoint is the host (and port) a repository URL is fetched from, in
// known_hosts form: "host" or "[host]:port".
func Endpoint(repo string) (string, error) {
	host, port, _, err := parseRepo(repo)
	if err != nil {
		return "", err
	}
	if port != "" && port != "22" {
		return "[" + host + "]:" + port, nil
	}
	return host, nil
}

// parseRepo accepts ssh://[user@]host[:port]/path and the scp-like
// [user@]host:path; it returns the host, port and path.
func parseRepo(repo string) (host, port, path string, err error) {
	bad := func(why string) error {
		return fmt.Errorf("repository %q: %s; give an SSH URL such as git@github.com:acme/shop.git or ssh://git@git.example.com:2222/acme/shop.git", repo, why)
	}
	if repo == "" || strings.HasPrefix(repo, "-") || strings.ContainsAny(repo, " \t\n\r") {
		return "", "", "", bad("not a repository URL")
	}
	if strings.HasPrefix(repo, "ssh://") {
		u, err := url.Parse(repo)
		if err != nil || u.Hostname() == "" || u.Path == "" || u.Path == "/" {
			return "", "", "", bad("not a valid ssh:// URL")
		}
		return u.Hostname(), u.Port(), u.Path, nil
	}
	if strings.Contains(repo, "://") {
		return "", "", "", bad("only SSH is used, with the environment's deploy key")
	}
	hostPart, path, ok := strings.Cut(repo, ":")
	if !ok || path == "" || strings.Contains(hostPart, "/") {
		return "", "", "", bad("no host:path")
	}
	if _, h, found := strings.Cut(hostPart, "@"); found {
		hostPart = h
	}
	if hostPart == "" {
		return "", "", "", bad("no host")
	}
	return hostPart, "", path, nil
}

// SameRepository reports whether two URLs name the same repository:
// the same host and path, whatever the scheme, user, port or ".git".
func SameRepository(a, b string) bool {
	return repoKey(a) != "" && repoKey(a) == repoKey(b)
}

// repoKey is "host/path" in lower case, without ".git" or slashes at the
// ends; "" if the URL cannot be read. It reads https:// URLs and GitHub's
// "owner/name" too, as push events carry them.
func repoKey(s string) string {
	var host, path string
	switch {
	case strings.Contains(s, "://"):
		u, err := url.Parse(s)
		if err != nil {
			return ""
		}
		host, path = u.Hostname(), u.Path
	case strings.Contains(s, ":"):
		var err error
		if host, _, path, err = parseRepo(s); err != nil {
			return ""
		}
	default:
		return ""
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	if host == "" || path == "" {
		return ""
	}
	return strings.ToLower(host + "/" + path)
}

// Setup prepares ae to deploy from git: it makes the deploy key the first
// time (ed25519, root-only), stores the secret and the git server's host
// keys, and records the repository and branch in app.json. It returns the
// deploy key's public half, an authorized_keys line.
func Setup(l state.Layout, ae state.AppEnv, req SetupRequest, comment string) (string, error) {
	if _, err := Endpoint(req.Repository); err != nil {
		return "", err
	}
	if err := CheckBranch(req.Branch); err != nil {
		return "", err
	}
	if len(req.Secret) < MinSecret {
		return "", fmt.Errorf("the webhook secret is %d characters: give at least %d (jepush git:setup makes one)", len(req.Secret), MinSecret)
	}
	if err := checkKnownHosts(req.KnownHosts); err != nil {
		return "", err
	}
	f := FilesOf(l, ae)
	// The app environment's directory is 0750 (state.MkdirAppEnv), open to
	// its app's group once a deploy made it (its releases are below it);
	// git/ is root's alone.
	if err := state.MkdirAppEnv(filepath.Dir(f.Dir)); err != nil {
		return "", err
	}
	if err := os.Mkdir(f.Dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	if err := os.Chmod(f.Dir, 0o700); err != nil {
		return "", err
	}
	pub, err := ensureKey(f, comment)
	if err != nil {
		return "", err
	}
	if err := atomicfile.WriteFile(f.KnownHosts(), []byte(req.KnownHosts), 0o600); err != nil {
		return "", err
	}
	if err := atomicfile.WriteFile(f.Secret(), []byte(req.Secret+"\n"), 0o600); err != nil {
		return "", err
	}
	_, err = state.UpdateApp(l.AppJSON(ae), func(a *state.App) error {
		g := a.Git
		if g == nil || !SameRepository(g.Repository, req.Repository) || g.Branch != req.Branch {
			g = &state.Git{}
		}
		g.Repository, g.Branch = req.Repository, req.Branch
		a.Git = g
		return nil
	})
	return pub, err
}

func checkKnownHosts(lines string) error {
	rest := []byte(lines)
	n := 0
	for len(strings.TrimSpace(string(rest))) > 0 {
		_, _, _, _, r, err := ssh.ParseKnownHosts(rest)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("the git server's host keys: %w", err)
		}
		n++
		rest = r
	}
	if n == 0 {
		return errors.New("no host key for the git server: its SSH host keys are needed to fetch safely (jepush git:setup takes them from your known_hosts)")
	}
	return nil
}

// ensureKey makes the deploy key if it is missing and returns its public
// half.
func ensureKey(f Files, comment string) (string, error) {
	if b, err := os.ReadFile(f.PublicKey()); err == nil {
		if _, err := os.Stat(f.Key()); err == nil {
			return strings.TrimSpace(string(b)), nil
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return "", err
	}
	if err := atomicfile.WriteFile(f.Key(), pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " " + comment
	return line, atomicfile.WriteFile(f.PublicKey(), []byte(line+"\n"), 0o644)
}

// ReadSecret reads the webhook's secret.
func (f Files) ReadSecret() ([]byte, error) {
	b, err := os.ReadFile(f.Secret())
	if err != nil {
		return nil, err
	}
	s := strings.TrimSpace(string(b))
	if len(s) < MinSecret {
		return nil, fmt.Errorf("%s holds no usable secret: run jepush git:setup again", f.Secret())
	}
	return []byte(s), nil
}
