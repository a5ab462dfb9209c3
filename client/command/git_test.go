package command

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/bundle"
	"github.com/jecloud/jecloud/internal/gitdeploy"
	"github.com/jecloud/jecloud/internal/remote/sshdtest"
	"github.com/jecloud/jecloud/internal/state"
)

// TestGitPushDeploys is push-to-deploy end to end: a real sshd on
// loopback serves both the agent (for jepush git:setup) and bare git
// repositories (the git server, with a submodule); the real jeagent
// webhook receives signed push events; the real roll-forward fetches the
// commit with the deploy key, bundles it and deploys it. Refused
// deliveries are logged with their reason.
func TestGitPushDeploys(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	s := sshdtest.Start(t, sshdtest.Options{})
	tmp := t.TempDir()
	agent := buildAgent(t)
	t.Setenv("HOME", s.Home(t, s.KnownHostsLines()))
	t.Setenv("SSH_AUTH_SOCK", "")
	t.Setenv("GIT_CONFIG_GLOBAL", filepath.Join(tmp, "gitconfig"))
	sshdtest.WriteFile(t, filepath.Join(tmp, "gitconfig"), "[user]\n\tname = Test\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n[protocol \"file\"]\n\tallow = always\n", 0o644)
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}

	// The git server: origin.git (the app) with lib.git as a submodule,
	// both reached over SSH like GitHub.
	repos := filepath.Join(tmp, "repos")
	url := func(name string) string {
		return fmt.Sprintf("ssh://%s@127.0.0.1:%d%s/%s", s.User, s.Port, repos, name)
	}
	for _, name := range []string{"origin.git", "lib.git"} {
		git(tmp, "init", "--quiet", "--bare", filepath.Join(repos, name))
	}
	lib := filepath.Join(tmp, "lib")
	git(tmp, "init", "--quiet", lib)
	sshdtest.WriteFile(t, filepath.Join(lib, "index.js"), "module.exports = 'lib'\n", 0o644)
	git(lib, "add", ".")
	git(lib, "commit", "--quiet", "-m", "lib")
	git(lib, "push", "--quiet", filepath.Join(repos, "lib.git"), "main")
	work := filepath.Join(tmp, "work")
	git(tmp, "init", "--quiet", work)
	sshdtest.WriteFile(t, filepath.Join(work, "server.js"), "console.log(1)\n", 0o644)
	sshdtest.WriteFile(t, filepath.Join(work, "public", "index.html"), "<h1>v1</h1>\n", 0o644)
	git(work, "-c", "protocol.file.allow=always", "submodule", "--quiet", "add", filepath.Join(repos, "lib.git"), "vendor/lib")
	// The submodule as the server will fetch it: over SSH.
	git(work, "config", "-f", ".gitmodules", "submodule.vendor/lib.url", url("lib.git"))
	git(work, "add", ".")
	git(work, "commit", "--quiet", "-m", "v1")
	git(work, "push", "--quiet", filepath.Join(repos, "origin.git"), "main")
	c1 := git(work, "rev-parse", "HEAD")

	// The app's jepush config and the agent's root.
	root := filepath.Join(tmp, "root")
	if out, err := exec.Command(agent, "--root", root, "init").CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	appDir := filepath.Join(tmp, "app")
	sshdtest.WriteFile(t, filepath.Join(appDir, "jecloud.toml"), fmt.Sprintf("app = \"shop\"\n[env.prod]\nhosts = [%q]\nagent = %q\nroot = %q\n",
		s.User+"@"+s.Addr(), agent, root), 0o644)
	ctx := context.Background()
	code, out, errb := jepush(ctx, "git:setup", "prod", "--repo", url("origin.git"), "--branch", "main", "--dir", appDir, "--json")
	if code != 0 {
		t.Fatalf("git:setup: exit %d\n%s\n%s", code, out, errb)
	}
	var setup struct {
		Secret string `json:"secret"`
		Hosts  []struct {
			PublicKey  string `json:"public_key"`
			WebhookURL string `json:"webhook_url"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(out), &setup); err != nil || len(setup.Hosts) != 1 || len(setup.Secret) != 64 {
		t.Fatalf("git:setup --json: %v\n%s", err, out)
	}
	if !strings.HasSuffix(setup.Hosts[0].WebhookURL, ":9100/hooks/shop/prod") || !strings.HasPrefix(setup.Hosts[0].PublicKey, "ssh-ed25519 ") {
		t.Errorf("git:setup: %+v", setup.Hosts[0])
	}
	l := state.Layout{Root: root}
	shop := state.AppEnv{App: "shop", Env: "prod"}
	files := gitdeploy.FilesOf(l, shop)
	for _, p := range []string{files.Dir, files.Key(), files.Secret(), files.KnownHosts()} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v, mode %v: want root-only", p, err, st.Mode())
		}
	}
	// The git server lets the deploy key in (GitHub: Deploy keys).
	f, err := os.OpenFile(filepath.Join(s.Dir, "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, setup.Hosts[0].PublicKey)
	f.Close()

	// The webhook, as systemd would start it (here on a port of our own).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var whLog syncBuffer
	wh := exec.Command(agent, "--root", root, "webhook", "--listen", addr, "--idle", "0")
	wh.Stderr = &whLog
	if err := wh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wh.Process.Kill(); wh.Wait() })
	hook := "http://" + addr + "/hooks/shop/prod"
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		} else if i > 100 {
			t.Fatalf("webhook does not listen: %v\n%s", err, whLog.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	deliver := func(secret, delivery, event string, payload any) (int, string) {
		t.Helper()
		body, _ := json.Marshal(payload)
		req, _ := http.NewRequest("POST", hook, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", event)
		req.Header.Set("X-GitHub-Delivery", delivery)
		req.Header.Set("X-Hub-Signature-256", gitdeploy.Sign([]byte(secret), body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	push := func(ref, commit, repo string) map[string]any {
		return map[string]any{"ref": ref, "after": commit, "repository": map[string]any{
			"full_name": "acme/shop", "ssh_url": repo, "clone_url": "https://example.com/acme/shop.git"}}
	}
	// wantID is what `jepush bundle` gives for a clone of commit.
	wantID := func(commit string) string {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "clone")
		git(tmp, "-c", "protocol.file.allow=always", "clone", "--quiet", filepath.Join(repos, "origin.git"), dir)
		git(dir, "checkout", "--quiet", commit)
		git(dir, "config", "submodule.vendor/lib.url", filepath.Join(repos, "lib.git"))
		git(dir, "-c", "protocol.file.allow=always", "submodule", "--quiet", "update", "--init", "--recursive")
		id, err := bundle.Hash(dir, bundle.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	waitLive := func(id string) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			var a state.App
			state.Read(l.AppJSON(shop), &a)
			if a.CurrentVersion == id && a.Deployment == nil {
				return
			}
			if time.Now().After(deadline) {
				b, _ := os.ReadFile(l.LogFile())
				t.Fatalf("version %s not live; app.json: %+v (backoff %+v)\nroll-forward log:\n%s\nwebhook log:\n%s", id, a, a.Backoff, b, whLog.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// A signed push of the branch: accepted at once, built and deployed.
	code, body := deliver(setup.Secret, "d-1", "push", push("refs/heads/main", c1, url("origin.git")))
	if code != http.StatusAccepted || !strings.Contains(body, `"status":"accepted"`) {
		t.Fatalf("push: %d %s", code, body)
	}
	v1 := wantID(c1)
	waitLive(v1)
	// Bundled by the agent itself: stored with a receipt, as an upload is,
	// so the deployment did not read it twice.
	if _, err := os.Stat(l.Receipt(shop, v1)); err != nil {
		t.Errorf("no receipt for the built bundle: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(l.Release(shop, v1), "vendor", "lib", "index.js")); err != nil || string(b) != "module.exports = 'lib'\n" {
		t.Fatalf("the submodule in the release: %q %v", b, err)
	}

	// Refused: a wrong signature, a replay, an unknown repository; ignored:
	// another branch, a ping.
	for _, tc := range []struct {
		name, secret, delivery, event string
		payload                       any
		code                          int
		log                           string
	}{
		{"wrong signature", "not-the-secret-0123456789", "d-2", "push", push("refs/heads/main", c1, url("origin.git")), 401, "delivery d-2 from 127.0.0.1"},
		{"replay", setup.Secret, "d-1", "push", push("refs/heads/main", c1, url("origin.git")), 409, "delivery d-1 was received before: replay refused"},
		{"another branch", setup.Secret, "d-3", "push", push("refs/heads/dev", c1, url("origin.git")), 202, "push to refs/heads/dev: shop/prod deploys branch main"},
		{"unknown repository", setup.Secret, "d-4", "push", map[string]any{"ref": "refs/heads/main", "after": c1,
			"repository": map[string]any{"ssh_url": "git@github.com:evil/shop.git"}}, 403, "unknown repository git@github.com:evil/shop.git"},
		{"ping", setup.Secret, "d-5", "ping", map[string]any{"zen": "hi"}, 200, "ping: the webhook reaches this server"},
	} {
		code, body := deliver(tc.secret, tc.delivery, tc.event, tc.payload)
		if code != tc.code {
			t.Errorf("%s: status %d, want %d: %s", tc.name, code, tc.code, body)
		}
		if !waitFor(&whLog, tc.log) {
			t.Errorf("%s: the webhook's log lacks %q:\n%s", tc.name, tc.log, whLog.String())
		}
	}
	if !strings.Contains(whLog.String(), "bad signature") {
		t.Errorf("log:\n%s", whLog.String())
	}

	// A second push deploys the new commit.
	sshdtest.WriteFile(t, filepath.Join(work, "public", "index.html"), "<h1>v2</h1>\n", 0o644)
	git(work, "commit", "--quiet", "-am", "v2")
	git(work, "push", "--quiet", filepath.Join(repos, "origin.git"), "main")
	c2 := git(work, "rev-parse", "HEAD")
	if code, body := deliver(setup.Secret, "d-6", "push", push("refs/heads/main", c2, url("origin.git"))); code != http.StatusAccepted {
		t.Fatalf("second push: %d %s", code, body)
	}
	v2 := wantID(c2)
	waitLive(v2)
	var a state.App
	if err := state.Read(l.AppJSON(shop), &a); err != nil || a.Git == nil || a.Git.Built == nil || a.Git.Built.Commit != c2 || a.Git.Built.Version != v2 {
		t.Errorf("app.json git: %+v", a.Git)
	}
	st, err := exec.Command(agent, "--root", root, "status", "shop", "prod").CombinedOutput()
	if want := "git:        branch main of " + url("origin.git") + ": last push " + c2[:12] + " (delivery d-6, "; err != nil ||
		!strings.Contains(string(st), want) || !strings.Contains(string(st), "built as "+v2) {
		t.Errorf("jeagent status lacks %q: %v\n%s", want, err, st)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(files.Dir, ".build-*")); len(leftovers) > 0 {
		t.Errorf("checkouts left behind: %v", leftovers)
	}
}

// waitFor reports whether sub shows up in b within 5 s (a command's output
// arrives through a pipe).
func waitFor(b *syncBuffer, sub string) bool {
	for range 100 {
		if strings.Contains(b.String(), sub) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
