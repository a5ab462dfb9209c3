//go:build e2e

package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/gitdeploy"
	"github.com/jecloud/jecloud/internal/lab"
)

// TestGitWebhook: git push-to-deploy on a real Debian server with systemd.
// The server is its own git server (a bare repository reached over its
// sshd with the deploy key, as it would reach GitHub); `jepush git:setup`
// installs jeagent-webhook.socket; a signed push event to its port starts
// the webhook service, which records the commit and starts the
// roll-forward, which fetches, bundles and deploys it; the app then serves
// the pushed commit. Replays and wrong signatures are refused and logged
// in the journal, and the webhook service ends when idle.
func TestGitWebhook(t *testing.T) {
	t.Parallel() // mostly waiting (docs/lab.md: lab tests in parallel)
	srv := lab.Boot(t, 1)[0]
	jeagent, jepush := binaries(t)
	for _, b := range []string{"jeagent", "jeagent-tick"} {
		if err := srv.CopyIn(filepath.Join(filepath.Dir(jeagent), b), "/usr/local/bin/"+b); err != nil {
			t.Fatal(err)
		}
	}
	srv.MustExec("jeagent", "init")
	installMirror(t, srv)

	// The repository: examples/hello, committed on the server in a bare repo.
	src := filepath.Join(repoRoot(), "examples", "hello")
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		if err := srv.CopyIn(filepath.Join(src, e.Name()), "/tmp/hello/"+e.Name()); err != nil {
			t.Fatal(err)
		}
	}
	commit := func(msg string) string {
		srv.MustExec("sh", "-c", `cd /tmp/hello && git add -A && git -c user.name=t -c user.email=t@example.com commit -q -m "`+msg+`" && git push -q /srv/git/hello.git HEAD:main`)
		return strings.TrimSpace(srv.MustExec("git", "-C", "/tmp/hello", "rev-parse", "HEAD"))
	}
	srv.MustExec("sh", "-c", "git init -q --bare -b main /srv/git/hello.git && git init -q -b main /tmp/hello")
	c1 := commit("v1")

	// jepush git:setup, with the server's host key from our known_hosts.
	home := lab.SSHHome(t, srv)
	repo := fmt.Sprintf("ssh://root@%s/srv/git/hello.git", srv.Addr)
	// The webhook listens on loopback; deliveries come through the front
	// door (port 80 here: TLS is TestTLS's), at its fixed path of the
	// environment's domain.
	cmd := exec.Command(jepush, "git:setup", "prod", "--dir", src, "--host", "root@"+srv.Addr.String(), "--repo", repo, "--json")
	cmd.Env = append(os.Environ(), "HOME="+home, "SSH_AUTH_SOCK=")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git:setup: %v\n%s", err, out)
	}
	var setup push_GitSetup
	if err := json.Unmarshal(out, &setup); err != nil || len(setup.Hosts) != 1 {
		t.Fatalf("git:setup --json: %v\n%s", err, out)
	}
	contains(t, "git:setup", setup.Hosts[0].Socket, "jeagent-webhook.socket")
	if setup.Hosts[0].Listen != "127.0.0.1:9100" {
		t.Errorf("the webhook listens on %q, want loopback only", setup.Hosts[0].Listen)
	}
	srv.MustExec("python3", "-c", `import json
p = "/var/cloud/hello/prod/app.json"
d = json.load(open(p))
d["domains"] = ["hello.example.com"]
json.dump(d, open(p, "w"))`)
	srv.MustExec("jeagent", "rollforward")
	viaDoor := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", srv.Addr.String()+":80")
	}}}
	contains(t, "the socket", srv.MustExec("systemctl", "is-active", "jeagent-webhook.socket"), "active")
	if out, err := srv.Exec(t.Context(), "systemd-analyze", "verify", "/etc/systemd/system/jeagent-webhook.socket", "/etc/systemd/system/jeagent-webhook.service"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The git server accepts the deploy key (GitHub: Deploy keys).
	srv.MustExec("sh", "-c", "echo '"+setup.Hosts[0].PublicKey+"' >> /root/.ssh/authorized_keys")

	deliver := func(secret, delivery string, c string) int {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"ref": "refs/heads/main", "after": c,
			"repository": map[string]any{"ssh_url": repo}})
		req, _ := http.NewRequest("POST", "http://hello.example.com/hooks/hello/prod", bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", delivery)
		req.Header.Set("X-Hub-Signature-256", gitdeploy.Sign([]byte(secret), body))
		t0 := time.Now()
		resp, err := viaDoor.Do(req)
		if err != nil {
			t.Fatalf("delivery %s: %v", delivery, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		t.Logf("delivery %s: %d in %v: %s", delivery, resp.StatusCode, time.Since(t0).Round(time.Millisecond), strings.TrimSpace(string(b)))
		return resp.StatusCode
	}
	served := func(want string) func() bool {
		return func() bool {
			resp, err := viaDoor.Get("http://hello.example.com/")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return strings.Contains(string(b), want)
		}
	}
	t0 := time.Now()
	if code := deliver(setup.Secret, "gh-1", c1); code != http.StatusAccepted {
		t.Fatalf("push: %d", code)
	}
	v1 := ""
	eventually(t, 3*time.Minute, "commit "+c1[:12]+" to be live", func() bool {
		a := readApp(t, srv, "hello", "prod")
		v1 = a.CurrentVersion
		return a.Git != nil && a.Git.Built != nil && a.Git.Built.Commit == c1 && a.CurrentVersion == a.Git.Built.Version && a.Deployment == nil
	})
	eventually(t, 30*time.Second, "the app to serve release "+v1, served("release "+v1))
	t.Logf("push of %s live and served %v after the delivery", c1[:12], time.Since(t0).Round(100*time.Millisecond))

	// Refused: a wrong signature, a replay. The journal says why.
	if code := deliver("wrong-secret-0123456789abcdef", "gh-2", c1); code != http.StatusUnauthorized {
		t.Errorf("wrong signature: %d", code)
	}
	if code := deliver(setup.Secret, "gh-1", c1); code != http.StatusConflict {
		t.Errorf("replay: %d", code)
	}
	journal := srv.MustExec("journalctl", "-u", "jeagent-webhook.service", "--no-pager", "-o", "cat")
	contains(t, "the webhook's journal", journal, "delivery gh-1", "accepted", "delivery gh-2", "bad signature", "replay refused")

	// A second push deploys the new commit.
	srv.MustExec("sh", "-c", `sed -i "s/hello from JeCloud/hello again from JeCloud/" /tmp/hello/server.js`)
	c2 := commit("v2")
	if code := deliver(setup.Secret, "gh-3", c2); code != http.StatusAccepted {
		t.Fatalf("second push: %d", code)
	}
	eventually(t, 3*time.Minute, "commit "+c2[:12]+" to be live", func() bool {
		a := readApp(t, srv, "hello", "prod")
		return a.Git != nil && a.Git.Built != nil && a.Git.Built.Commit == c2 && a.CurrentVersion == a.Git.Built.Version && a.Deployment == nil
	})
	// Nothing runs while nobody pushes: the service ends after 30 s idle.
	eventually(t, 60*time.Second, "the webhook service to end when idle", func() bool {
		out, _ := srv.Exec(t.Context(), "systemctl", "is-active", "jeagent-webhook.service")
		return strings.TrimSpace(out) == "inactive"
	})
	contains(t, "the socket stays", srv.MustExec("systemctl", "is-active", "jeagent-webhook.socket"), "active")
}

// push_GitSetup is `jepush git:setup --json`.
type push_GitSetup struct {
	Secret string `json:"secret"`
	Hosts  []struct {
		Host       string `json:"host"`
		PublicKey  string `json:"public_key"`
		WebhookURL string `json:"webhook_url"`
		Socket     string `json:"socket"`
		Listen     string `json:"listen"`
	} `json:"hosts"`
}
