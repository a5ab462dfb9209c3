package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/remote"
	"github.com/jecloud/jecloud/internal/remote/sshdtest"
)

// syncBuffer is a bytes.Buffer safe for the goroutines of a run.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func fakeAgent(t *testing.T) string {
	p, err := filepath.Abs("testdata/fakeagent.sh")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// appDir makes a small app to push.
func appDir(t *testing.T) string {
	dir := t.TempDir()
	sshdtest.WriteFile(t, filepath.Join(dir, "package.json"), `{"name":"shop"}`, 0o644)
	sshdtest.WriteFile(t, filepath.Join(dir, "server.js"), "console.log('hi')\n", 0o644)
	sshdtest.WriteFile(t, filepath.Join(dir, "bin", "start"), "#!/bin/sh\nexec node server.js\n", 0o755)
	return dir
}

// sshEnv is an sshd with two names for it in an ssh config, web1 and web2.
type sshEnv struct {
	s    *sshdtest.Server
	opts remote.SSHOptions
}

func newSSHEnv(t *testing.T) *sshEnv {
	s := sshdtest.Start(t, sshdtest.Options{})
	home := s.Home(t, s.KnownHostsLines())
	var cfg strings.Builder
	for _, h := range []string{"web1", "web2", "web3"} {
		fmt.Fprintf(&cfg, "Host %s\n  HostName 127.0.0.1\n  Port %d\n  User %s\n", h, s.Port, s.User)
	}
	sshdtest.WriteFile(t, filepath.Join(home, ".ssh", "config"), cfg.String(), 0o600)
	return &sshEnv{s: s, opts: remote.SSHOptions{Home: home, SystemConfigFile: "none", GlobalKnownHostsFiles: []string{}}}
}

// client returns a Client pushing to hosts, each with its own agent root.
func (e *sshEnv) client(t *testing.T, roots map[string]string, hosts ...string) (*Client, *syncBuffer, *syncBuffer) {
	agent := fakeAgent(t)
	var ts []remote.Target
	for _, h := range hosts {
		if roots[h] == "" {
			roots[h] = t.TempDir()
		}
		ts = append(ts, remote.Target{Dest: h, Agent: agent, Root: roots[h]})
	}
	out, errb := &syncBuffer{}, &syncBuffer{}
	return &Client{
		App: "shop", Env: "prod", Targets: ts,
		Open:   func(ctx context.Context, t remote.Target) (remote.Runner, error) { return remote.Open(ctx, t, e.opts) },
		Stdout: out, Stderr: errb, StatusCmd: "jepush status prod",
	}, out, errb
}

func calls(t *testing.T, root, cmd string) int {
	b, _ := os.ReadFile(filepath.Join(root, "calls.log"))
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, cmd+" ") {
			n++
		}
	}
	return n
}

func TestPushOverSSH(t *testing.T) {
	e := newSSHEnv(t)
	roots := map[string]string{}
	c, out, errb := e.client(t, roots, "web1")
	dir := appDir(t)
	ctx := context.Background()

	// First push: uploaded, deployed, live.
	if err := c.Push(ctx, dir, Options{Timeout: 5 * time.Minute}); err != nil {
		t.Fatalf("push: %v\nstderr:\n%s", err, errb)
	}
	root := roots["web1"]
	if calls(t, root, "receive") != 1 || calls(t, root, "deploy") != 1 {
		t.Fatalf("calls:\n%s", must(os.ReadFile(filepath.Join(root, "calls.log"))))
	}
	id := strings.TrimSpace(string(must(os.ReadFile(filepath.Join(root, "shop", "prod", "current")))))
	if !strings.Contains(string(must(os.ReadFile(filepath.Join(root, "calls.log")))), "deploy shop prod "+id+" --wait --timeout 5m0s") {
		t.Errorf("deploy arguments:\n%s", must(os.ReadFile(filepath.Join(root, "calls.log"))))
	}
	for _, want := range []string{"web1: extracting " + id + "\n", "web1: " + id + " is live\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{"bundling " + dir + " ... done", "version " + id, "uploading to web1", "version " + id + " is live on web1"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb)
		}
	}

	// Same tree again: not uploaded again.
	if err := c.Push(ctx, dir, Options{}); err != nil {
		t.Fatalf("re-push: %v", err)
	}
	if n := calls(t, root, "receive"); n != 1 {
		t.Errorf("re-push of the same tree uploaded again (%d receives)", n)
	}
	if !strings.Contains(errb.String(), "web1 already has version "+id+": not uploading") {
		t.Errorf("stderr:\n%s", errb)
	}

	// A failing deploy: its reason and an error.
	sshdtest.WriteFile(t, filepath.Join(root, "fail"), "hook node: npm ci exited with status 1", 0o644)
	sshdtest.WriteFile(t, filepath.Join(dir, "server.js"), "console.log('changed')\n", 0o644)
	err := c.Push(ctx, dir, Options{})
	var ae *AgentError
	if !errors.As(err, &ae) {
		t.Fatalf("failed deploy: error %v, want an AgentError", err)
	}
	if !strings.Contains(err.Error(), "web1: deploy of ") || !strings.Contains(err.Error(), "failed: hook node: npm ci exited with status 1") {
		t.Errorf("error does not give the reason: %v", err)
	}
	if code, _ := remote.ExitCode(err); code != 1 {
		t.Errorf("exit code %d", code)
	}
	if calls(t, root, "receive") != 2 {
		t.Errorf("a changed tree must be uploaded")
	}
}

func TestPushSeveralHosts(t *testing.T) {
	e := newSSHEnv(t)
	roots := map[string]string{}
	c, _, errb := e.client(t, roots, "web1", "web2", "web3")
	sshdtest.WriteFile(t, filepath.Join(roots["web2"], "fail"), "out of disk space", 0o644)
	err := c.Push(context.Background(), appDir(t), Options{})
	if err == nil {
		t.Fatal("push succeeded with a failing host")
	}
	for _, want := range []string{"web2: deploy of", "failed: out of disk space", "live on: web1", "not deployed: web3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if calls(t, roots["web3"], "has") != 0 {
		t.Errorf("web3 was contacted after web2 failed")
	}
	if calls(t, roots["web1"], "deploy") != 1 {
		t.Errorf("web1 not deployed:\n%s", errb)
	}
}

func TestPushUploadRefused(t *testing.T) {
	e := newSSHEnv(t)
	roots := map[string]string{}
	c, _, _ := e.client(t, roots, "web1")
	sshdtest.WriteFile(t, filepath.Join(roots["web1"], "full"), "", 0o644)
	err := c.Push(context.Background(), appDir(t), Options{})
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("error %v, want the agent's reason", err)
	}
	if calls(t, roots["web1"], "deploy") != 0 {
		t.Errorf("deployed after a failed upload")
	}
}

func TestPushNoAgent(t *testing.T) {
	e := newSSHEnv(t)
	c, _, _ := e.client(t, map[string]string{}, "web1")
	c.Targets[0].Agent = "/nonexistent/jeagent"
	err := c.Push(context.Background(), appDir(t), Options{})
	if err == nil || !strings.Contains(err.Error(), "jeagent is not installed there") {
		t.Errorf("error %v, want a hint that jeagent is missing", err)
	}
}

func TestPushInterrupted(t *testing.T) {
	e := newSSHEnv(t)
	roots := map[string]string{}
	c, out, _ := e.client(t, roots, "web1", "web2")
	sshdtest.WriteFile(t, filepath.Join(roots["web1"], "slow"), "3", 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cancelled := make(chan time.Time, 1)
	go func() {
		for !strings.Contains(out.String(), "extracting") {
			time.Sleep(10 * time.Millisecond)
		}
		cancelled <- time.Now()
		cancel() // Ctrl-C while watching the deploy (which sleeps 3 s)
	}()
	err := c.Push(ctx, appDir(t), Options{})
	returned := time.Now()
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("error %v, want ErrInterrupted", err)
	}
	// Push must not wait for the deploy it watches: measured from the
	// Ctrl-C, not from the start (the output may come late on a busy machine).
	if d := returned.Sub(<-cancelled); d > 2500*time.Millisecond {
		t.Errorf("Push returned %s after Ctrl-C", d)
	}
	for _, want := range []string{"stopped watching web1", "goes on there", "jepush status prod --follow", "not deployed: web2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestLocalTargetAndOps(t *testing.T) {
	root := t.TempDir()
	out, errb := &syncBuffer{}, &syncBuffer{}
	c := &Client{App: "shop", Env: "dev", Targets: []remote.Target{{Local: true, Root: root, Agent: fakeAgent(t)}},
		Stdout: out, Stderr: errb, StatusCmd: "jepush status dev"}
	ctx := context.Background()
	dir := appDir(t)
	if err := c.Push(ctx, dir, Options{}); err != nil {
		t.Fatalf("push: %v\n%s", err, errb)
	}
	id := strings.TrimSpace(string(must(os.ReadFile(filepath.Join(root, "shop", "dev", "current")))))

	out.b.Reset()
	if err := c.Status(ctx, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"local  live", id, "last failure", "7c3e92c0ab12", "out of disk space"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	out.b.Reset()
	if err := c.Status(ctx, true); err != nil {
		t.Fatal(err)
	}
	var st struct {
		App   string
		Hosts []struct {
			Host   string
			Status AgentStatus
		}
	}
	if err := json.Unmarshal([]byte(out.String()), &st); err != nil || st.App != "shop" || st.Hosts[0].Status.Apps[0].CurrentVersion != id {
		t.Errorf("status --json: %v\n%s", err, out)
	}

	sshdtest.WriteFile(t, filepath.Join(dir, "server.js"), "v2\n", 0o644)
	if err := c.Push(ctx, dir, Options{}); err != nil {
		t.Fatal(err)
	}
	out.b.Reset()
	if err := c.Rollback(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(must(os.ReadFile(filepath.Join(root, "shop", "dev", "current"))))); got != id {
		t.Errorf("after rollback current = %s, want %s", got, id)
	}
	out.b.Reset()
	if err := c.Logs(ctx, false, 10); err != nil {
		t.Fatal(err)
	}
	if out.String() != "May 01 12:00:00 web1 node[123]: listening on :3000\n" {
		t.Errorf("logs of one target are not prefixed: %q", out)
	}
	if !strings.Contains(string(must(os.ReadFile(filepath.Join(root, "calls.log")))), "logs shop dev -n 10") {
		t.Errorf("logs arguments")
	}
	if err := c.Follow(ctx); err != nil || !strings.Contains(out.String(), "local: following") {
		t.Errorf("follow: %v %q", err, out)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestGitHostKeys(t *testing.T) {
	kh := filepath.Join(t.TempDir(), "known_hosts")
	line := "[git.example.com]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
	sshdtest.WriteFile(t, kh, line+"github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n", 0o600)
	got, err := GitHostKeys("ssh://git@git.example.com:2222/acme/shop.git", []string{kh})
	if err != nil || got != line {
		t.Errorf("GitHostKeys: %q %v, want %q", got, err, line)
	}
	for repo, hint := range map[string]string{
		"ssh://git@other.example.com:2222/acme/shop.git": "(ssh -T -p 2222 git@other.example.com)",
		"git@gitlab.example.com:acme/shop.git":           "(ssh -T git@gitlab.example.com)",
	} {
		if _, err := GitHostKeys(repo, []string{kh}); err == nil || !strings.Contains(err.Error(), hint) {
			t.Errorf("%s: %v, want the hint %q", repo, err, hint)
		}
	}
}

// TestProtocolWarning: jepush warns, once per push and server, when the
// agent states another protocol version than its own, or none.
func TestProtocolWarning(t *testing.T) {
	for _, tc := range []struct{ agent, want string }{
		{"1", ""},
		{"none", "warning: the agent on local speaks protocol 0 and this jepush protocol 1: some commands may fail there. Upgrade the agent"},
		{"2", "warning: the agent on local speaks protocol 2, newer than this jepush (protocol 1)"},
	} {
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(root, "protocol"), []byte(tc.agent), 0o644); err != nil {
			t.Fatal(err)
		}
		errb := &syncBuffer{}
		c := &Client{App: "shop", Env: "dev", Targets: []remote.Target{{Local: true, Root: root, Agent: fakeAgent(t)}},
			Stdout: &syncBuffer{}, Stderr: errb, StatusCmd: "jepush status dev"}
		if err := c.Push(context.Background(), appDir(t), Options{}); err != nil {
			t.Fatalf("push: %v\n%s", err, errb)
		}
		got := errb.String()
		if tc.want == "" && strings.Contains(got, "protocol") || tc.want != "" && strings.Count(got, tc.want) != 1 {
			t.Errorf("agent protocol %s: push said\n%s\nwant %q once", tc.agent, got, tc.want)
		}
	}
}
