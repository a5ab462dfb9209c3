//go:build e2e

package e2e_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/bootstrap"
	"github.com/jecloud/jecloud/internal/bundle"
	"github.com/jecloud/jecloud/internal/lab"
)

// TestSudoDeployUserIsNotRoot: a server made by the same cloud-init
// user-data as on EC2, whose deploy user may run `sudo jeagent` (the real
// sudo and sudoers line cloud-init writes), and that user trying, with
// hostile arguments, every way to make jeagent run code of its choosing as
// root: a state root, hooks directory and bundle of its own, the verbs for
// root only, a hook request on stdin, the environment. None leaves the
// mark its hook would; the verbs jepush needs still work (issue #17 part 1).
func TestSudoDeployUserIsNotRoot(t *testing.T) {
	lab.Require(t)
	jeagent, _ := binaries(t)
	agent, err := os.ReadFile(jeagent)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(agent)
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl deploy@laptop"
	ud, err := bootstrap.UserData(bootstrap.UserDataOptions{App: "shop", Env: "prod", Server: "shop-prod-1",
		AuthorizedKey: key, AgentSHA256: hex.EncodeToString(sum[:])})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := lab.BootOne(t, lab.Options{CloudInit: &lab.CloudInit{UserData: ud}})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := srv.Exec(t.Context(), "cloud-init", "status", "--wait"); err != nil {
		t.Fatalf("cloud-init: %v\n%s", err, out)
	}
	// What jepush does on a new server: upload jeagent as the deploy user;
	// the unit cloud-init started installs it and runs jeagent init.
	if err := srv.CopyIn(jeagent, bootstrap.Upload); err != nil {
		t.Fatal(err)
	}
	srv.MustExec("chown", bootstrap.DeployUser+":", bootstrap.Upload)
	eventually(t, 2*time.Minute, "jeagent installed by cloud-init's unit", func() bool {
		_, err := srv.Exec(t.Context(), "test", "-e", bootstrap.Ready)
		return err == nil
	})
	contains(t, "sudoers", srv.MustExec("cat", "/etc/sudoers.d/90-cloud-init-users"), "ALL=(root) NOPASSWD: /usr/local/bin/jeagent")

	// The deploy user's own tree: a state root with a hook that marks.
	const (
		home = "/home/" + bootstrap.DeployUser
		evil = home + "/evil"
		mark = "/root/ran-as-root"
	)
	asUser := func(stdin []byte, script string) (string, error) {
		cmd := srv.Command(t.Context(), "runuser", "-u", bootstrap.DeployUser, "--", "sh", "-c", script)
		cmd.Stdin = bytes.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := asUser(nil, "set -e; mkdir -p "+evil+"/sys/hooks.d; printf '#!/bin/sh\\ntouch "+mark+"\\n' > "+evil+"/sys/hooks.d/00-mark; chmod 755 "+evil+"/sys/hooks.d/00-mark"); err != nil {
		t.Fatalf("set up the user's tree: %v\n%s", err, out)
	}
	id, data := bundleOf(t, map[string]string{"server.js": "require('http').createServer((q, s) => s.end('x')).listen(process.env.PORT)\n",
		"Procfile": "web: node server.js\n", "sys/hooks.d/00-mark": "#!/bin/sh\ntouch " + mark + "\n"})
	hookReq := fmt.Sprintf(`{"phase":"deployed","app":"shop","env":"prod","version":%q,"release_dir":%q,"root":%q}`, id, evil, evil)

	gitIn := []byte(`{"secret": "0123456789abcdef0123456789abcdef", "known_hosts": ""}`)
	attempts := []struct {
		name   string
		stdin  []byte
		script string
	}{
		{"receive into the user's root", data, "sudo -n jeagent --root " + evil + " receive shop prod " + id},
		{"deploy from the user's root", nil, "sudo -n jeagent --root " + evil + " deploy shop prod " + id + " --wait"},
		// The reported attack: a release extracted under the user's root
		// holds root-owned executables (its sys/hooks.d), which would pass
		// a check of hooks.d alone, used as a root in turn.
		{"a release of the user's root as the root", nil, "sudo -n jeagent --root " + evil + "/shop/prod/source/versions/" + id + " deploy shop prod " + id + " --wait"},
		{"the root flag after the arguments", nil, "sudo -n jeagent deploy shop prod " + id + " --wait --root " + evil},
		{"JECLOUD_ROOT kept through sudo", nil, "JECLOUD_ROOT=" + evil + " sudo -n --preserve-env=JECLOUD_ROOT jeagent rollforward"},
		{"the whole environment through sudo", nil, "JECLOUD_ROOT=" + evil + " sudo -n -E jeagent rollforward"},
		{"init a root of the user's", nil, "sudo -n jeagent --root " + evil + " init --no-systemd"},
		{"init", nil, "sudo -n jeagent init"},
		{"rollforward", nil, "sudo -n jeagent rollforward"},
		{"rollforward as fwd", nil, "sudo -n jeagent fwd"},
		{"a hook with the user's request", []byte(hookReq), "sudo -n jeagent hook node deployed"},
		{"a hook named by path", []byte(hookReq), "sudo -n jeagent hook " + evil + "/sys/hooks.d/00-mark deployed"},
		{"restore", nil, "sudo -n jeagent restore shop prod redis latest"},
		{"backup", nil, "sudo -n jeagent backup shop prod redis"},
		{"webhook on an address of the user's", nil, "sudo -n jeagent webhook --listen 127.0.0.1:9999 --idle 1s"},
		{"git setup with a command as repository", gitIn, "sudo -n jeagent git setup shop prod --repo 'ext::sh -c touch% " + mark + "'"},
		{"git setup with an option as repository", gitIn, "sudo -n jeagent git setup shop prod --repo '-oProxyCommand=touch " + mark + "'"},
		{"follow into the user's root", nil, "sudo -n jeagent --root " + evil + " follow shop prod --bucket b --server s"},
		{"a config var that is a command", nil, "sudo -n jeagent config:set shop prod 'X=$(touch " + mark + ")' 'Y=`touch " + mark + "`' --no-restart"},
		{"a config var name that is a line", nil, "sudo -n jeagent config:set shop prod \"$(printf 'A=1\\nLD_PRELOAD')=/tmp/x.so\" --no-restart"},
		{"logs with a shell in its count", nil, "sudo -n jeagent logs shop prod -n '1;touch " + mark + "'"},
		{"a host name that is a command", nil, "sudo -n jeagent domains:add shop prod 'x.example.com;touch " + mark + "' '$(touch " + mark + ").example.com'"},
		{"a host name that is a flag", nil, "sudo -n jeagent domains:add shop prod --root=" + evil + " x.example.com"},
		{"a host name that is a path", nil, "sudo -n jeagent domains:add shop prod ../../sys/hooks.d"},
		{"maintenance in the user's root", nil, "sudo -n jeagent --root " + evil + " maintenance:on shop prod"},
		{"another program through the sudoers line", nil, "sudo -n /bin/sh -c 'touch " + mark + "'"},
		{"jeagent by another path", nil, "cp /usr/local/bin/jeagent " + home + "/jeagent && sudo -n " + home + "/jeagent init"},
	}
	var rows []string
	for _, a := range attempts {
		out, err := asUser(a.stdin, a.script)
		_, marked := srv.Exec(t.Context(), "test", "-e", mark)
		result := "refused: " + lastLine(out)
		if err == nil {
			result = "ran: " + lastLine(out)
		}
		rows = append(rows, fmt.Sprintf("| %s | `%s` | %s |", a.name, a.script, result))
		if marked == nil {
			t.Fatalf("%s: the user's code ran as root (%s)\n%s", a.name, a.script, out)
		}
	}
	// The bundle's own hooks.d is part of a release, never the server's.
	if out, err := srv.Exec(t.Context(), "sh", "-c", "ls /var/cloud/sys/hooks.d 2>/dev/null | wc -l"); err != nil || strings.TrimSpace(out) != "0" {
		t.Errorf("the server's hooks.d: %v %q", err, out)
	}
	t.Logf("attempts of the deploy user (through the real sudo):\n%s", strings.Join(rows, "\n"))

	// What jepush needs still works for that user, on /var/cloud.
	for _, step := range []struct {
		stdin  []byte
		script string
	}{
		{data, "sudo -n jeagent receive shop prod " + id},
		{nil, "sudo -n jeagent has shop prod " + id},
		{nil, "sudo -n jeagent deploy shop prod " + id + " --wait"},
		{nil, "sudo -n jeagent status shop prod --json"},
		{nil, "sudo -n jeagent config:set shop prod A=1"},
		{nil, "sudo -n jeagent ps shop prod --json"},
		{nil, "sudo -n jeagent domains:add shop prod www.example.com"},
		{nil, "sudo -n jeagent domains shop prod --json"},
		{nil, "sudo -n jeagent maintenance:on shop prod"},
		{nil, "sudo -n jeagent maintenance:off shop prod"},
		{nil, "sudo -n jeagent domains:remove shop prod www.example.com"},
	} {
		if out, err := asUser(step.stdin, step.script); err != nil {
			t.Errorf("%s: %v\n%s", step.script, err, out)
		}
	}
	if _, err := srv.Exec(t.Context(), "test", "-e", mark); err == nil {
		t.Fatal("the user's hook ran as root")
	}
	t.Logf("summary: sudo boundary in the lab: %d attempts by cloud-init's deploy user through the real sudo, none ran its code as root; 11 verbs jepush needs worked", len(attempts))
}

// bundleOf bundles files and returns the version ID and the bundle.
func bundleOf(t *testing.T, files map[string]string) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files)
	var buf bytes.Buffer
	id, err := bundle.Write(dir, &buf, bundle.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return id, buf.Bytes()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	l := lines[len(lines)-1]
	if len(l) > 160 {
		l = l[:160] + "..."
	}
	return strings.ReplaceAll(l, "|", `\|`)
}
