//go:build e2e

package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jecloud/jecloud/internal/lab"
)

const (
	unitDir = "/etc/systemd/system"
	service = "jeagent-rollforward.service"
	timer   = "jeagent-rollforward.timer"
	// The test's user hook sleeps in prepare for as many seconds as this
	// file on the server says.
	sleepFile = "/etc/jecloud-e2e/prepare-sleep"
)

// TestAgentUnderSystemd: jeagent and jepush on a real Debian server with
// systemd as PID 1.
//   - `jeagent init` installs the units, enables and starts the timer; a
//     second init changes nothing and says so.
//   - jepush (strict host key checking, root, agent `jeagent`) deploys
//     through jeagent-rollforward.service: the journal of the unit shows the
//     steps.
//   - A deploy whose SSH session is cut (jepush killed mid-prepare) still
//     completes; meanwhile `jeagent rollforward` sees the lock and exits 0.
//   - A roll-forward killed with SIGKILL mid-deploy is finished by the timer.
//   - A hand edit of app.json is applied by the timer within one period.
func TestAgentUnderSystemd(t *testing.T) {
	t.Parallel() // mostly waiting (docs/lab.md: lab tests in parallel)
	srv := lab.Boot(t, 1)[0]
	jeagent, jepush := binaries(t)
	if err := srv.CopyIn(jeagent, "/usr/local/bin/jeagent"); err != nil {
		t.Fatal(err)
	}
	// jeagent-tick beside it: the timer's service runs it, and it runs
	// jeagent rollforward whenever there is work (every step below).
	if err := srv.CopyIn(filepath.Join(filepath.Dir(jeagent), "jeagent-tick"), "/usr/local/bin/jeagent-tick"); err != nil {
		t.Fatal(err)
	}

	// --- jeagent init: units installed, timer enabled and active.
	out := srv.MustExec("jeagent", "init")
	contains(t, "first init", out, "initialized /var/cloud", "wrote "+unitDir+"/"+service, "wrote "+unitDir+"/"+timer,
		"enabled "+timer, "started "+timer)
	if got := strings.TrimSpace(srv.MustExec("systemctl", "is-enabled", timer)); got != "enabled" {
		t.Errorf("timer is %s", got)
	}
	if got := strings.TrimSpace(srv.MustExec("systemctl", "is-active", timer)); got != "active" {
		t.Errorf("timer is %s", got)
	}
	if out, err := srv.Exec(context.Background(), "systemd-analyze", "verify", unitDir+"/"+service, unitDir+"/"+timer); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	contains(t, "the service", srv.MustExec("systemctl", "cat", service), "ExecStart=/usr/local/bin/jeagent-tick --agent /usr/local/bin/jeagent\n")
	stamp := srv.MustExec("stat", "-c", "%n %Y %i", unitDir+"/"+service, unitDir+"/"+timer)
	out = srv.MustExec("jeagent", "init")
	contains(t, "second init", out, "nothing to do")
	if strings.Contains(out, "wrote") || strings.Contains(out, "enabled "+timer) || strings.Contains(out, "started") {
		t.Errorf("second init changed something:\n%s", out)
	}
	if again := srv.MustExec("stat", "-c", "%n %Y %i", unitDir+"/"+service, unitDir+"/"+timer); again != stamp {
		t.Errorf("second init rewrote the units:\n%s\n%s", stamp, again)
	}
	if out := srv.MustExec("jeagent", "init", "--no-systemd"); strings.Contains(out, "systemd:") {
		t.Errorf("init --no-systemd:\n%s", out)
	}
	t.Logf("systemd-analyze security: %s", firstLine(srv.MustExec("sh", "-c", "systemd-analyze security --no-pager "+service+" | tail -n 1")))

	// --- jepush over SSH, strict host keys, deploy through the service.
	home := lab.SSHHome(t, srv)
	sshConfig := filepath.Join(t.TempDir(), "ssh_config")
	os.WriteFile(sshConfig, []byte(fmt.Sprintf("Host web1\n  HostName %s\n  User root\n", srv.Addr)), 0o600)
	env := append(os.Environ(), "HOME="+home, "JEPUSH_SSH_CONFIG="+sshConfig, "SSH_AUTH_SOCK=")
	app := t.TempDir() // no package.json: not a Node.js app, no runtime to fetch
	writeFiles(t, app, map[string]string{
		"server.js":    "console.log(1)\n",
		"jecloud.toml": "app = \"shop\"\n[env.prod]\nhosts = [\"web1\"]\nagent = \"jeagent\"\n",
	})
	push := func() *exec.Cmd {
		cmd := exec.Command(jepush, app, "prod")
		cmd.Env = env
		return cmd
	}
	start := time.Now()
	b, err := push().CombinedOutput()
	if err != nil {
		t.Fatalf("jepush: %v\n%s", err, b)
	}
	contains(t, "jepush", string(b), "uploading to web1", "started "+service, "deploy:extracting", "is unpacked on web1; no process types")
	v1 := readApp(t, srv, "shop", "prod").CurrentVersion
	if v1 == "" {
		t.Fatalf("no current_version after the push:\n%s", b)
	}
	t.Logf("first push: %s live in %.1fs", v1, time.Since(start).Seconds())
	journal := srv.MustExec("journalctl", "-u", service, "--no-pager", "-o", "cat")
	contains(t, "the service's journal", journal, "shop/prod: deploy:verifying", "shop/prod: deploy:extracting",
		"shop/prod: deploy:switching", v1)

	// The host key is checked: a known_hosts with another key stops the push.
	other := lab.SSHHome(t, srv)
	os.WriteFile(filepath.Join(other, ".ssh", "known_hosts"),
		[]byte(srv.Addr.String()+" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"), 0o600)
	bad := push()
	bad.Env = append(os.Environ(), "HOME="+other, "JEPUSH_SSH_CONFIG="+sshConfig, "SSH_AUTH_SOCK=")
	if b, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(b), "HAS CHANGED") {
		t.Errorf("push with a wrong host key: %v\n%s", err, b)
	}

	// --- The SSH session is cut mid-deploy: the deploy completes anyway.
	if err := srv.WriteFile("/var/cloud/sys/hooks.d/50-slow", []byte("#!/bin/sh\n"+
		"if [ \"$1\" = prepare ] && [ -f "+sleepFile+" ]; then echo \"slow prepare: sleeping $(cat "+sleepFile+")s\" >&2; sleep \"$(cat "+sleepFile+")\"; fi\n"+
		"exit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	setSleep(t, srv, 6)
	writeFiles(t, app, map[string]string{"server.js": "console.log(2)\n"})
	var pushOut bytes.Buffer
	cut := push()
	cut.Stdout, cut.Stderr = &pushOut, &pushOut
	if err := cut.Start(); err != nil {
		t.Fatal(err)
	}
	pushDone := make(chan struct{})
	go func() { cut.Wait(); close(pushDone) }()
	var v2 string
	eventually(t, 60*time.Second, "the second deployment to reach preparing", func() bool {
		a := readApp(t, srv, "shop", "prod")
		if a.Deployment != nil && a.Deployment.State == "preparing" {
			v2 = a.Deployment.Version
			return true
		}
		return false
	})
	time.Sleep(500 * time.Millisecond) // inside the hook's sleep
	cut.Process.Kill()
	<-pushDone
	t.Logf("killed jepush (pid %d) while %s was preparing", cut.Process.Pid, v2)

	// Meanwhile, another run finds the lock held and leaves at once.
	holder := lockHolder(t, srv)
	rfStart := time.Now()
	out = srv.MustExec("jeagent", "rollforward")
	if !strings.Contains(out, fmt.Sprintf("another roll-forward is running (pid %d", holder)) || time.Since(rfStart) > 3*time.Second {
		t.Errorf("rollforward under a held lock (held by %d), %.1fs:\n%s", holder, time.Since(rfStart).Seconds(), out)
	}
	// ...and the run holding it is the systemd service's.
	if cg := srv.MustExec("cat", fmt.Sprintf("/proc/%d/cgroup", holder)); !strings.Contains(cg, "/system.slice/"+service) {
		t.Errorf("the roll-forward (pid %d) is not in %s:\n%s", holder, service, cg)
	}
	eventually(t, 60*time.Second, "the cut deploy to complete", func() bool {
		return readApp(t, srv, "shop", "prod").CurrentVersion == v2
	})
	if a := readApp(t, srv, "shop", "prod"); a.Deployment != nil || len(a.RecentFailedDeployments) > 0 {
		t.Errorf("after the cut deploy: %+v", a)
	}

	// --- kill -9 of the roll-forward mid-deploy: the timer finishes it.
	// `jeagent deploy` without --wait, so that nothing but the timer can
	// start another run (v1's release is still on the server).
	setSleep(t, srv, 4)
	out = srv.MustExec("jeagent", "deploy", "shop", "prod", v1)
	contains(t, "deploy", out, "started "+service)
	eventually(t, 60*time.Second, "the redeployment of v1 to reach preparing", func() bool {
		a := readApp(t, srv, "shop", "prod")
		return a.Deployment != nil && a.Deployment.Version == v1 && a.Deployment.State == "preparing"
	})
	time.Sleep(500 * time.Millisecond)
	victim := lockHolder(t, srv)
	if comm := strings.TrimSpace(srv.MustExec("cat", fmt.Sprintf("/proc/%d/comm", victim))); comm != "jeagent" {
		t.Fatalf("lock holder %d is %q", victim, comm)
	}
	srv.MustExec("kill", "-9", strconv.Itoa(victim))
	killedAt, killedMono := time.Now(), monotonicNow()
	eventually(t, 20*time.Second, "the service to notice the kill", func() bool {
		s := strings.TrimSpace(srv.MustExec("systemctl", "show", "-p", "ActiveState", "--value", service))
		return s == "failed" || s == "inactive"
	})
	if a := readApp(t, srv, "shop", "prod"); a.CurrentVersion != v2 || a.Deployment == nil {
		t.Fatalf("right after the kill: %+v", a)
	}
	setSleep(t, srv, 0)
	eventually(t, 150*time.Second, "the timer to finish the killed deploy", func() bool {
		return readApp(t, srv, "shop", "prod").CurrentVersion == v1
	})
	t.Logf("the timer finished the killed deploy %.0fs after the kill", time.Since(killedAt).Seconds())
	if last := lastTrigger(t, srv); last < killedMono {
		t.Errorf("the timer did not trigger since the kill (last trigger at %d µs, kill at %d µs)", last, killedMono)
	}
	if a := readApp(t, srv, "shop", "prod"); a.Deployment != nil || len(a.RecentFailedDeployments) > 0 {
		t.Errorf("after the timer's run: %+v", a)
	}
	if target := strings.TrimSpace(srv.MustExec("readlink", "/var/cloud/shop/prod/source/versions/current")); target != v1 {
		t.Errorf("current -> %s, want %s", target, v1)
	}
	if s := srv.MustExec("jeagent", "status", "shop", "prod"); !strings.Contains(s, v1) {
		t.Errorf("status:\n%s", s)
	}
	// The timer goes on: the service ran from the timer after the kill, and
	// nothing failed since.
	if got := strings.TrimSpace(srv.MustExec("systemctl", "show", "-p", "Result", "--value", service)); got != "success" {
		t.Errorf("service result %s", got)
	}

	// --- A hand edit of app.json (current_version back to v2, as a person
	// would with an editor, keeping a note of their own) is carried out by
	// the timer within one period, and the note survives.
	raw, err := srv.ReadFile("/var/cloud/shop/prod/app.json")
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(raw), `"current_version": "`+v1+`"`, `"current_version": "`+v2+`", "note": "rolled back by hand"`, 1)
	if edited == string(raw) {
		t.Fatalf("app.json has no current_version %s:\n%s", v1, raw)
	}
	editedAt := time.Now()
	if err := srv.WriteFile("/var/cloud/shop/prod/app.json", []byte(edited), 0o640); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "the timer to apply the hand edit", func() bool {
		target := strings.TrimSpace(srv.MustExec("readlink", "/var/cloud/shop/prod/source/versions/current"))
		a := readApp(t, srv, "shop", "prod")
		return target == v2 && a.CurrentVersion == v2 && a.Deployment == nil
	})
	t.Logf("the timer applied the hand edit %.0fs after it", time.Since(editedAt).Seconds())
	if b, _ := srv.ReadFile("/var/cloud/shop/prod/app.json"); !strings.Contains(string(b), `"note": "rolled back by hand"`) {
		t.Errorf("the agent dropped the person's key:\n%s", b)
	}
}

func setSleep(t *testing.T, srv *lab.Server, seconds int) {
	t.Helper()
	if err := srv.WriteFile(sleepFile, []byte(strconv.Itoa(seconds)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// lockHolder returns the pid in the roll-forward's lock file.
func lockHolder(t *testing.T, srv *lab.Server) int {
	t.Helper()
	b, err := srv.ReadFile("/var/cloud/sys/pids/rollforward.pid")
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("lock file: %q", b)
	}
	return pid
}

// lastTrigger returns when the timer last triggered the service, on the
// monotonic clock (which the containers share with the host), in µs.
func lastTrigger(t *testing.T, srv *lab.Server) int64 {
	t.Helper()
	s := strings.TrimSpace(srv.MustExec("busctl", "get-property", "org.freedesktop.systemd1",
		"/org/freedesktop/systemd1/unit/jeagent_2drollforward_2etimer", "org.freedesktop.systemd1.Timer", "LastTriggerUSecMonotonic"))
	v, err := strconv.ParseInt(strings.TrimPrefix(s, "t "), 10, 64)
	if err != nil {
		t.Fatalf("LastTriggerUSecMonotonic: %q", s)
	}
	return v
}

// monotonicNow is the host's monotonic clock in µs.
func monotonicNow() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano() / 1000
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
