package command

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jecloud/jecloud/internal/remote/sshdtest"
	"github.com/jecloud/jecloud/internal/state"
)

// TestPushToRealAgentOverSSH is the main job end to end: jepush, a real
// sshd on loopback, and the real jeagent built from ./agent.
func TestPushToRealAgentOverSSH(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{ECDSA: true})
	agent := buildAgent(t)
	home := s.Home(t, s.KnownHostsLines())
	sshConfig := filepath.Join(t.TempDir(), "ssh_config")
	sshdtest.WriteFile(t, sshConfig, fmt.Sprintf("Host web1\n  HostName 127.0.0.1\n  Port %d\n  User %s\n", s.Port, s.User), 0o600)
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	t.Setenv("JEPUSH_SSH_CONFIG", sshConfig)

	root := t.TempDir()
	if out, err := exec.Command(agent, "--root", root, "init").CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	dir := t.TempDir()
	sshdtest.WriteFile(t, filepath.Join(dir, "server.js"), "console.log(1)\n", 0o644)
	sshdtest.WriteFile(t, filepath.Join(dir, "jecloud.toml"), fmt.Sprintf("app = \"shop\"\n[env.prod]\nhosts = [\"web1\"]\nagent = %q\nroot = %q\n", agent, root), 0o644)
	ctx := context.Background()
	l := state.Layout{Root: root}
	shop := state.AppEnv{App: "shop", Env: "prod"}
	readApp := func() state.App {
		var a state.App
		if err := state.Read(l.AppJSON(shop), &a); err != nil {
			t.Fatal(err)
		}
		return a
	}

	// First push: uploads, deploys, streams the agent's steps.
	code, out, errb := jepush(ctx, dir, "prod")
	if code != 0 || !strings.Contains(out, "deploy:extracting") || !strings.Contains(errb, "uploading to web1") {
		t.Fatalf("push: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errb)
	}
	v1 := readApp().CurrentVersion
	if target, _ := os.Readlink(l.Current(shop)); target != v1 || v1 == "" {
		t.Fatalf("current -> %q, current_version %q", target, v1)
	}
	// Same tree again: nothing compressed, uploaded or restarted.
	code, out, errb = jepush(ctx, dir, "prod")
	if code != 0 || !strings.Contains(errb, "web1 already has version "+v1) || strings.Contains(errb, "uploading to") ||
		strings.Contains(errb, "compressed") || !strings.Contains(out, v1+" is already live") {
		t.Fatalf("re-push: exit %d\n%s\n%s", code, out, errb)
	}
	// --force deploys it again.
	code, out, errb = jepush(ctx, dir, "prod", "--force")
	if code != 0 || strings.Contains(out, "already live") || !strings.Contains(out, "deploy:") {
		t.Fatalf("re-push --force: exit %d\n%s\n%s", code, out, errb)
	}
	// A version whose prepare hook fails: non-zero exit with the hook's reason, v1 stays live.
	sshdtest.WriteFile(t, filepath.Join(l.HooksDir(), "10-check"),
		"#!/bin/sh\n[ \"$1\" = prepare ] && [ -e \"$JECLOUD_RELEASE_DIR/broken\" ] && { echo 'npm ci: lockfile out of date' >&2; exit 1; }\nexit 0\n", 0o755)
	sshdtest.WriteFile(t, filepath.Join(dir, "broken"), "", 0o644)
	code, _, errb = jepush(ctx, dir, "prod")
	if code == 0 || !strings.Contains(errb, "prepare hook 10-check failed: npm ci: lockfile out of date") {
		t.Fatalf("failing deploy: exit %d\n%s", code, errb)
	}
	if a := readApp(); a.CurrentVersion != v1 {
		t.Fatalf("a failed deploy changed current_version to %s", a.CurrentVersion)
	}
	// A good second version, then a rollback to v1.
	os.Remove(filepath.Join(dir, "broken"))
	sshdtest.WriteFile(t, filepath.Join(dir, "server.js"), "console.log(2)\n", 0o644)
	if code, _, errb = jepush(ctx, dir, "prod"); code != 0 {
		t.Fatalf("second push: exit %d\n%s", code, errb)
	}
	v2 := readApp().CurrentVersion
	if code, out, errb = jepush(ctx, "rollback", "prod", "--dir", dir); code != 0 {
		t.Fatalf("rollback: exit %d\n%s%s", code, out, errb)
	}
	if a := readApp(); a.CurrentVersion != v1 || v2 == v1 {
		t.Fatalf("after rollback: current %s, want %s", a.CurrentVersion, v1)
	}
	// status --json is what scripts read.
	code, out, _ = jepush(ctx, "status", "prod", "--dir", dir, "--json")
	var st any
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || !strings.Contains(out, v1) {
		t.Fatalf("status --json: exit %d\n%s", code, out)
	}
}

// TestConfigVarsOverSSH sets, shows and unsets config vars through jepush,
// SSH and the real agent: values travel on stdin, not on the command line.
func TestConfigVarsOverSSH(t *testing.T) {
	s, _, dir := agentOverSSH(t)
	ctx := context.Background()
	if code, _, errb := jepush(ctx, dir, "prod"); code != 0 {
		t.Fatalf("push: %s", errb)
	}
	code, out, errb := jepush(ctx, "config:set", "prod", "API_KEY=s3cr3t value", "MODE=fast", "--dir", dir)
	if code != 0 || !strings.Contains(out, "restarting") {
		t.Fatalf("config:set: exit %d\n%s\n%s", code, out, errb)
	}
	if strings.Contains(s.Log(), "s3cr3t") {
		t.Error("a config var value reached the server's command line")
	}
	if code, out, _ = jepush(ctx, "config", "prod", "--dir", dir); code != 0 || !strings.Contains(out, "API_KEY=s3cr3t value") {
		t.Fatalf("config: exit %d\n%s", code, out)
	}
	if code, _, errb = jepush(ctx, "config:unset", "prod", "MODE", "--no-restart", "--dir", dir); code != 0 {
		t.Fatalf("config:unset: %s", errb)
	}
	if _, out, _ = jepush(ctx, "config", "prod", "--dir", dir); strings.Contains(out, "MODE") {
		t.Errorf("MODE still set:\n%s", out)
	}
	if code, _, errb = jepush(ctx, "config:set", "prod", "PORT=1", "--dir", dir); code != 2 || !strings.Contains(errb, "set by JeCloud itself") {
		t.Errorf("config:set PORT: exit %d %s", code, errb)
	}
}

// TestDeltaPush pushes a one-file change as a delta against the live
// version, through jepush, sshd and the real jeagent, and falls back to the
// whole bundle when the server cannot use one.
func TestDeltaPush(t *testing.T) {
	_, root, dir := agentOverSSH(t)
	for i := range 200 {
		sshdtest.WriteFile(t, filepath.Join(dir, "lib", fmt.Sprintf("f%03d.js", i)), strings.Repeat(fmt.Sprintf("// file %d %x\n", i, i*7919), 300), 0o644)
	}
	ctx := context.Background()
	l := state.Layout{Root: root}
	shop := state.AppEnv{App: "shop", Env: "prod"}
	live := func() string {
		id, err := os.Readlink(l.Current(shop))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	if code, _, errb := jepush(ctx, dir, "prod"); code != 0 {
		t.Fatalf("first push: %s", errb)
	}
	v1 := live()

	// One file changed, one added, one removed: only those travel.
	sshdtest.WriteFile(t, filepath.Join(dir, "lib", "f007.js"), "module.exports = 7\n", 0o644)
	sshdtest.WriteFile(t, filepath.Join(dir, "lib", "new.js"), "module.exports = 'new'\n", 0o644)
	os.Remove(filepath.Join(dir, "lib", "f100.js"))
	code, _, errb := jepush(ctx, dir, "prod")
	if code != 0 || !strings.Contains(errb, "has version "+v1+": sending the changes (2 new or changed, 1 removed") ||
		strings.Contains(errb, "uploading to ") {
		t.Fatalf("delta push: exit %d\n%s", code, errb)
	}
	v2 := live()
	if b, _ := os.ReadFile(filepath.Join(l.Release(shop, v2), "lib", "f007.js")); string(b) != "module.exports = 7\n" {
		t.Fatalf("f007.js in the new release: %q", b)
	}
	if _, err := os.Stat(filepath.Join(l.Release(shop, v2), "lib", "f100.js")); err == nil {
		t.Fatal("f100.js is still in the new release")
	}
	if _, err := os.Stat(filepath.Join(l.Release(shop, v2), "lib", "f101.js")); err != nil {
		t.Fatalf("an unchanged file is missing: %v", err)
	}

	// The live version's bundle replaced by another version's: the server
	// refuses the changes, jepush sends the whole bundle, nothing is lost.
	if err := os.Rename(l.Bundle(shop, v1), l.Bundle(shop, v2)+".keep"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(l.Bundle(shop, v2), l.Bundle(shop, v1)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(l.Bundle(shop, v2)+".keep", l.Bundle(shop, v2)); err != nil {
		t.Fatal(err)
	}
	sshdtest.WriteFile(t, filepath.Join(dir, "lib", "f008.js"), "module.exports = 8\n", 0o644)
	code, out, errb := jepush(ctx, dir, "prod")
	if code != 0 || !strings.Contains(errb, "refused the changes") || !strings.Contains(errb, ", but the base bundle is ") ||
		!strings.Contains(errb, "uploading to ") {
		t.Fatalf("refused delta: exit %d\n%s\n%s", code, out, errb)
	}
	v3 := live()
	if leftovers, _ := filepath.Glob(filepath.Join(l.Versions(shop), "*.tmp*")); len(leftovers) > 0 {
		t.Errorf("left behind: %v", leftovers)
	}

	// The live bundle gone: nothing to compare with, the whole bundle goes.
	os.Remove(l.Bundle(shop, v3))
	sshdtest.WriteFile(t, filepath.Join(dir, "lib", "f009.js"), "module.exports = 9\n", 0o644)
	if code, _, errb = jepush(ctx, dir, "prod"); code != 0 || !strings.Contains(errb, "uploading to ") {
		t.Fatalf("push without a base: exit %d\n%s", code, errb)
	}

	// A renamed directory and a one-line change, against the version this
	// machine kept from the last push (delta format 2): copies and a
	// patch, and no manifest fetched.
	if err := os.Rename(filepath.Join(dir, "lib"), filepath.Join(dir, "src")); err != nil {
		t.Fatal(err)
	}
	f50 := strings.Repeat(fmt.Sprintf("// file %d %x\n", 50, 50*7919), 300) + "// one more line\n"
	os.Remove(filepath.Join(dir, "src", "f050.js"))
	sshdtest.WriteFile(t, filepath.Join(dir, "lib", "f050.js"), f50, 0o644) // stays, one line more
	code, _, errb = jepush(ctx, dir, "prod")
	if code != 0 || !strings.Contains(errb, "as kept from an earlier push (no manifest to fetch)") ||
		!strings.Contains(errb, "copied, 1 patched") || strings.Contains(errb, "uploading to ") {
		t.Fatalf("rename and patch: exit %d\n%s", code, errb)
	}
	v5 := live()
	if b, _ := os.ReadFile(filepath.Join(l.Release(shop, v5), "lib", "f050.js")); string(b) != f50 {
		t.Fatalf("lib/f050.js in the new release: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(l.Release(shop, v5), "src", "f101.js")); !strings.HasPrefix(string(b), "// file 101 ") {
		t.Fatalf("src/f101.js in the new release: %q", b)
	}
}

var (
	agentOnce sync.Once
	agentBin  string
	agentErr  error
)

// buildAgent builds jeagent from ../../agent once for the package's tests.
func buildAgent(t *testing.T) string {
	t.Helper()
	agentOnce.Do(func() {
		dir, err := os.MkdirTemp("", "jepush-test-agent-")
		if err != nil {
			agentErr = err
			return
		}
		agentBin = filepath.Join(dir, "jeagent")
		if out, err := exec.Command("go", "build", "-o", agentBin, "../../agent").CombinedOutput(); err != nil {
			agentErr = fmt.Errorf("build jeagent: %v\n%s", err, out)
		}
	})
	if agentErr != nil {
		t.Fatal(agentErr)
	}
	return agentBin
}

// TestMain removes the shared jeagent after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if agentBin != "" {
		os.RemoveAll(filepath.Dir(agentBin))
	}
	os.Exit(code)
}

// agentOverSSH starts an sshd whose user runs the real jeagent with its own
// root, and writes a jecloud.toml for app shop, environment prod, on it. It
// returns the sshd, the agent's root and the app directory.
func agentOverSSH(t *testing.T) (s *sshdtest.Server, root, dir string) {
	t.Helper()
	s = sshdtest.Start(t, sshdtest.Options{})
	agent := buildAgent(t)
	t.Setenv("HOME", s.Home(t, s.KnownHostsLines()))
	t.Setenv("SSH_AUTH_SOCK", "")
	root, dir = t.TempDir(), t.TempDir()
	sshdtest.WriteFile(t, filepath.Join(dir, "jecloud.toml"), fmt.Sprintf("app = \"shop\"\n[env.prod]\nhosts = [%q]\nagent = %q\nroot = %q\n",
		s.User+"@"+s.Addr(), agent, root), 0o644)
	return s, root, dir
}
