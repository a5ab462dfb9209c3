package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jecloud/jecloud/internal/state"
)

var (
	sudoAgentOnce sync.Once
	sudoAgent     string // jeagent built with its configured root in sudoRoot
	sudoRoot      string
	sudoErr       error
)

// buildSudoAgent builds jeagent with a configured root of the test's own
// (packages have /var/cloud), so that the verbs jepush needs can be run
// for real on behalf of a user who is not root.
func buildSudoAgent(t *testing.T) (bin, root string) {
	t.Helper()
	sudoAgentOnce.Do(func() {
		dir := filepath.Dir(jeagent)
		sudoRoot = filepath.Join(dir, "configured-root")
		sudoAgent = filepath.Join(dir, "jeagent-configured")
		out, err := exec.Command("go", "build", "-o", sudoAgent,
			"-ldflags", "-X github.com/jecloud/jecloud/agent/command.configuredRoot="+sudoRoot, ".").CombinedOutput()
		if err != nil {
			sudoErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if sudoErr != nil {
		t.Fatal(sudoErr)
	}
	return sudoAgent, sudoRoot
}

// runAs runs bin with env on top of a plain environment (no JECLOUD_ROOT
// unless env has one; no SUDO_* of the test's own caller).
func runAs(t *testing.T, bin string, env []string, stdin []byte, args ...string) result {
	t.Helper()
	return runBin(t, bin, append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...), stdin, args...)
}

// TestSudoBoundary plays the deploy user of cloud-init's sudoers line
// (`ALL=(root) NOPASSWD: /usr/local/bin/jeagent`), who may run jeagent as
// root but not a shell: sudo records it in SUDO_USER and SUDO_UID. Every
// attempt to make jeagent run code of that user's choosing as root is
// refused before anything runs; the verbs jepush needs work on the
// configured root. The attack: a state root of the user's own whose
// hooks.d holds a hook, deployed with --root or JECLOUD_ROOT, which runs
// that hook as root (it did before the boundary).
func TestSudoBoundary(t *testing.T) {
	bin, root := buildSudoAgent(t)
	if os.Geteuid() == 0 {
		// As it is on a server: the configured root belongs to root.
		os.RemoveAll(root)
	}
	if r := runAs(t, bin, []string{"JECLOUD_ROOT=" + root}, nil, "init", "--no-systemd"); r.code != 0 {
		t.Fatalf("init as root: %+v", r)
	}
	deployUser := []string{"SUDO_USER=jecloud-test-nosuchuser", "SUDO_UID=1000", "SUDO_GID=1000", "SUDO_COMMAND=/usr/local/bin/jeagent"}

	// The attacker's own root: a hook that leaves a mark when it runs.
	evil := t.TempDir()
	mark := filepath.Join(t.TempDir(), "ran-as-root")
	if r := runAs(t, bin, []string{"JECLOUD_ROOT=" + evil}, nil, "init", "--no-systemd"); r.code != 0 {
		t.Fatalf("init evil root: %+v", r)
	}
	l := state.Layout{Root: evil}
	os.MkdirAll(l.HooksDir(), 0o755)
	os.WriteFile(filepath.Join(l.HooksDir(), "00-evil"), []byte("#!/bin/sh\ntouch "+mark+"\n"), 0o755)
	id, data := makeBundle(t, map[string]string{"server.js": "x"})
	hookReq := fmt.Sprintf(`{"phase":"deployed","app":"web","env":"prod","version":%q,"release_dir":%q,"root":%q}`, id, evil, evil)

	attempts := []struct {
		name  string
		env   []string
		stdin []byte
		args  []string
		want  string
	}{
		{"receive into JECLOUD_ROOT", []string{"JECLOUD_ROOT=" + evil}, data, []string{"receive", "web", "prod", id}, "works on " + root + " only"},
		{"deploy with --root", nil, nil, []string{"--root", evil, "deploy", "web", "prod", id, "--wait"}, "works on " + root + " only"},
		{"deploy with --root after the arguments", nil, nil, []string{"deploy", "web", "prod", id, "--wait", "--root=" + evil}, "flag provided but not defined: -root"},
		{"rollforward", []string{"JECLOUD_ROOT=" + evil}, nil, []string{"rollforward"}, "jeagent rollforward is for root only"},
		{"fwd alias", nil, nil, []string{"fwd"}, "jeagent rollforward is for root only"},
		{"init elsewhere", nil, nil, []string{"--root", evil, "init"}, "jeagent init is for root only"},
		{"hook with a request naming the evil root", nil, []byte(hookReq), []string{"hook", "node", "deployed"}, "jeagent hook is for root only"},
		{"restore", nil, nil, []string{"restore", "web", "prod", "redis", "x"}, "jeagent restore is for root only"},
		{"backup", nil, nil, []string{"backup", "web", "prod", "redis"}, "jeagent backup is for root only"},
		{"follow into a root of the user's", nil, nil, []string{"--root", evil, "follow", "web", "prod", "--bucket", "b", "--server", "s"}, "works on " + root + " only"},
		{"webhook on an address of the user's", nil, nil, []string{"webhook", "--listen", "127.0.0.1:0"}, "jeagent webhook is for root only"},
		{"git without setup", nil, nil, []string{"git", "remove", "web", "prod"}, "is for root only"},
		{"help of a verb for root", nil, nil, []string{"init", "--help"}, "jeagent init is for root only"},
		{"domains:add with a flag for a host", nil, nil, []string{"domains:add", "web", "prod", "--root=" + evil, "x.example.com"}, "flag provided but not defined: -root"},
		{"domains:add with a command for a host", nil, nil, []string{"domains:add", "web", "prod", "x.example.com;touch " + mark}, `invalid host name "x.example.com;touch`},
		{"domains:add with a path for a host", nil, nil, []string{"domains:add", "web", "prod", "../../sys/hooks.d"}, `invalid host name "../../sys/hooks.d"`},
		{"maintenance in the user's root", []string{"JECLOUD_ROOT=" + evil}, nil, []string{"maintenance:on", "web", "prod"}, "works on " + root + " only"},
		{"flags before the verb", nil, nil, []string{"--root", root, "init", "--no-systemd"}, "jeagent init is for root only"},
	}
	for _, a := range attempts {
		t.Run(a.name, func(t *testing.T) {
			r := runAs(t, bin, append(append([]string{}, deployUser...), a.env...), a.stdin, a.args...)
			if r.code == 0 || !strings.Contains(r.stderr, a.want) {
				t.Errorf("jeagent %s: exit %d, stderr %q; want a refusal with %q", strings.Join(a.args, " "), r.code, r.stderr, a.want)
			}
			if _, err := os.Stat(mark); err == nil {
				t.Fatalf("jeagent %s ran the user's hook as root", strings.Join(a.args, " "))
			}
		})
	}

	// What jepush needs works, on the configured root.
	allowed := []struct {
		stdin []byte
		args  []string
	}{
		{data, []string{"receive", "web", "prod", id}},
		{nil, []string{"has", "web", "prod", id}},
		{nil, []string{"deploy", "web", "prod", id, "--wait"}},
		{nil, []string{"status", "web", "prod", "--json"}},
		{nil, []string{"config:set", "web", "prod", "A=1", "--no-restart"}},
		{nil, []string{"config", "web", "prod"}},
		{nil, []string{"manifest", "web", "prod"}},
		{nil, []string{"domains:add", "web", "prod", "www.example.com"}},
		{nil, []string{"domains", "web", "prod", "--json"}},
		{nil, []string{"maintenance:on", "web", "prod"}},
		{nil, []string{"maintenance:off", "web", "prod"}},
		{nil, []string{"domains:remove", "web", "prod", "www.example.com"}},
		{nil, []string{"destroy", "web", "prod"}},
		{nil, []string{"--help"}},
	}
	for _, step := range allowed {
		if r := runAs(t, bin, deployUser, step.stdin, step.args...); r.code != 0 {
			t.Errorf("jeagent %s on behalf of the deploy user: %+v", strings.Join(step.args, " "), r)
		}
	}
	if _, err := os.Stat(mark); err == nil {
		t.Fatal("the user's hook ran")
	}
	t.Logf("summary: sudo boundary: %d attempts with hostile roots, verbs and stdin refused, none ran the user's hook; %d commands jepush runs worked on the configured root", len(attempts), len(allowed))
}

// TestSudoAdministrator: a user whom sudo lets run anything as root (here
// root itself through sudo) keeps the whole command line, so that `sudo
// jeagent init` and `sudo -i` sessions of administrators work as before.
func TestSudoAdministrator(t *testing.T) {
	if _, err := exec.LookPath("sudo"); err != nil || os.Geteuid() != 0 {
		t.Skip("needs sudo and root")
	}
	bin, _ := buildSudoAgent(t)
	other := t.TempDir()
	r := runAs(t, bin, []string{"SUDO_USER=root", "SUDO_UID=1", "JECLOUD_ROOT=" + other}, nil, "init", "--no-systemd")
	if r.code != 0 {
		t.Fatalf("sudo jeagent init by an administrator: %+v", r)
	}
}
