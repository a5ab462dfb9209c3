//go:build e2e

package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/jecloud/jecloud/internal/lab"
)

// TestLab boots two servers and checks what tests rely on: systemd as PID 1,
// Exec, file copies that stay inside the container, sshd with the host key
// the test knows (strict checking), and that stopping a server, even one
// whose nspawn was SIGKILLed, leaves nothing on the host.
func TestLab(t *testing.T) {
	srvs := lab.Boot(t, 2)
	a, b := srvs[0], srvs[1]
	if a.Addr == b.Addr || a.Name == b.Name {
		t.Fatalf("two servers share %s/%s", a.Name, a.Addr)
	}
	for _, s := range srvs {
		if got := strings.TrimSpace(s.MustExec("hostname")); got != s.Name {
			t.Errorf("hostname %q, want %q", got, s.Name)
		}
		if got := strings.TrimSpace(s.MustExec("cat", "/proc/1/comm")); got != "systemd" {
			t.Errorf("PID 1 is %q", got)
		}
		state := strings.TrimSpace(s.MustExec("sh", "-c", "systemctl is-system-running || true"))
		if state != "running" {
			t.Errorf("%s: %s; failed units:\n%s", s.Name, state, s.MustExec("systemctl", "--failed", "--no-legend"))
		}
		for _, timer := range []string{"apt-daily.timer", "apt-daily-upgrade.timer"} {
			if got := strings.TrimSpace(s.MustExec("sh", "-c", "systemctl is-enabled "+timer+" || true")); got != "masked" {
				t.Errorf("%s: %s is %s", s.Name, timer, got)
			}
		}
	}
	// Machine IDs differ (journals are kept per machine ID).
	if a.MustExec("cat", "/etc/machine-id") == b.MustExec("cat", "/etc/machine-id") {
		t.Error("both servers have the same machine ID")
	}

	// Files: CopyIn keeps the mode; writes through an absolute symlink land
	// in the container (/var/run -> /run), not on the host.
	host := filepath.Join(t.TempDir(), "tool")
	os.WriteFile(host, []byte("#!/bin/sh\necho tool ran\n"), 0o755)
	if err := a.CopyIn(host, "/opt/lab/bin/tool"); err != nil {
		t.Fatal(err)
	}
	if got := a.MustExec("/opt/lab/bin/tool"); got != "tool ran\n" {
		t.Errorf("tool: %q", got)
	}
	marker := "jclab-test-" + a.Name
	a.MustExec("ln", "-sfn", "/run", "/opt/lab/escape")
	if err := a.WriteFile("/opt/lab/escape/"+marker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/run/" + marker); err == nil {
		os.Remove("/run/" + marker)
		t.Fatal("WriteFile followed a container symlink out to the host")
	}
	if got, err := a.ReadFile("/run/" + marker); err != nil || string(got) != "x" {
		t.Errorf("ReadFile: %q %v", got, err)
	}

	// SSH with strict host key checking, from the host to each server.
	home := lab.SSHHome(t, a, b)
	hk, err := knownhosts.New(filepath.Join(home, ".ssh", "known_hosts"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := os.ReadFile(filepath.Join(home, ".ssh", "id_ed25519"))
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range srvs {
		c, err := ssh.Dial("tcp", s.SSHAddr(), &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: hk, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatalf("ssh %s: %v", s.SSHAddr(), err)
		}
		sess, _ := c.NewSession()
		out, err := sess.CombinedOutput("hostname; systemctl is-system-running")
		c.Close()
		if err != nil || !strings.HasPrefix(string(out), s.Name+"\nrunning") {
			t.Errorf("ssh %s: %v %q", s.Name, err, out)
		}
	}
	// The other server's key does not pass for this one.
	wrong := knownhosts.Line([]string{a.Addr.String()}, b.HostKey) + "\n"
	os.WriteFile(filepath.Join(home, "wrong"), []byte(wrong), 0o600)
	hk2, _ := knownhosts.New(filepath.Join(home, "wrong"))
	if _, err := ssh.Dial("tcp", a.SSHAddr(), &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hk2, Timeout: 10 * time.Second}); err == nil || !strings.Contains(err.Error(), "key mismatch") {
		t.Errorf("ssh with a wrong host key: %v", err)
	}

	// A clean stop, and a stop after nspawn was SIGKILLed (its container
	// lives on, its ephemeral copy stays): both leave nothing.
	if err := a.Stop(); err != nil {
		t.Error(err)
	}
	checkGone(t, a)
	nspawn := parentOf(t, b.PID())
	syscall.Kill(nspawn, syscall.SIGKILL)
	time.Sleep(300 * time.Millisecond)
	if !running(b.PID()) {
		t.Logf("the container's systemd died with nspawn")
	}
	if err := b.Stop(); err != nil {
		t.Error(err)
	}
	checkGone(t, b)
	if cs := copies(); len(cs) > 0 {
		t.Errorf("ephemeral copies left: %v", cs)
	}
}

func parentOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	var ppid int
	fmt.Sscanf(strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[1], "%d", &ppid)
	return ppid
}

// checkGone checks that nothing of server s is left on the host.
func checkGone(t *testing.T, s *lab.Server) {
	t.Helper()
	if running(s.PID()) {
		t.Errorf("%s: its systemd (pid %d) still runs", s.Name, s.PID())
	}
	if _, err := net.InterfaceByName("ve-" + s.Name); err == nil {
		t.Errorf("%s: veth left", s.Name)
	}
	for _, p := range []string{"/sys/fs/cgroup/" + s.Name, "/sys/fs/cgroup/systemd/" + s.Name, "/sys/fs/cgroup/unified/" + s.Name,
		"/run/systemd/nspawn/propagate/" + s.Name, "/run/jecloud-lab/" + s.Name + ".json", "/run/jecloud-lab/" + s.Name + ".lock"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s: %s left", s.Name, p)
		}
	}
	if ms := mountsMentioning(s.Name); len(ms) > 0 {
		t.Errorf("%s: mounts left: %v", s.Name, ms)
	}
}

// running reports whether pid is a process that has not exited (zombies
// wait for their parent to reap them).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// copies returns the ephemeral copies of the image left in this process's
// in-memory copy of it (other test processes may run servers of their own).
func copies() []string {
	cs, _ := filepath.Glob(fmt.Sprintf("/dev/shm/jecloud-lab/*.%d/.#machine.*", os.Getpid()))
	return cs
}

func mountsMentioning(s string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var ms []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			ms = append(ms, sc.Text())
		}
	}
	return ms
}

// TestSweepAfterKilledRun boots a server in a child test process, kills that
// process with SIGKILL (no cleanup runs) and checks that lab.Sweep removes
// everything it left.
func TestSweepAfterKilledRun(t *testing.T) {
	if os.Getenv("JCLAB_HELPER") == "1" {
		s := lab.Boot(t, 1)[0]
		fmt.Printf("READY %s %d\n", s.Name, s.PID())
		time.Sleep(10 * time.Minute)
		return
	}
	lab.Require(t)
	lab.Image(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSweepAfterKilledRun$", "-test.v")
	cmd.Env = append(os.Environ(), "JCLAB_HELPER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var name string
	var cpid int
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "READY %s %d", &name, &cpid); err == nil {
			break
		}
	}
	if name == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the helper did not boot a server")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := os.Stat("/run/jecloud-lab/" + name + ".json"); err != nil {
		t.Fatalf("the killed run left no record of %s: %v", name, err)
	}
	if err := lab.Sweep(); err != nil {
		t.Fatal(err)
	}
	if running(cpid) {
		t.Errorf("%s: its systemd (pid %d) still runs", name, cpid)
	}
	if _, err := net.InterfaceByName("ve-" + name); err == nil {
		t.Errorf("%s: veth left", name)
	}
	for _, p := range []string{"/sys/fs/cgroup/systemd/" + name, "/sys/fs/cgroup/unified/" + name, "/sys/fs/cgroup/" + name,
		"/run/systemd/nspawn/propagate/" + name, "/run/jecloud-lab/" + name + ".json"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left", p)
		}
	}
	if ms := mountsMentioning(name); len(ms) > 0 {
		t.Errorf("mounts left: %v", ms)
	}
	if cs := copies(); len(cs) > 0 {
		t.Errorf("ephemeral copies left: %v", cs)
	}
	if ds, _ := filepath.Glob(fmt.Sprintf("/dev/shm/jecloud-lab/*.%d", cmd.Process.Pid)); len(ds) > 0 {
		t.Errorf("the killed run's image copy is left: %v", ds)
	}
}

// TestSweep removes leftovers of interrupted runs; run it alone to clean up
// by hand: go test -tags e2e -run '^TestSweep$' ./e2e/
func TestSweep(t *testing.T) {
	lab.Require(t)
	if err := lab.Sweep(); err != nil {
		t.Fatal(err)
	}
}
