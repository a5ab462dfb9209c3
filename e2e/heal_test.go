//go:build e2e

package e2e_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Reachable is the fake's status check of a lab machine: whether its
// container still runs and its SSH port answers, as EC2's reachability
// check asks whether the instance's operating system answers on its
// network. (The address alone is no proof: a stopped server's address goes
// back to the lab, which may give it to the next server.)
func (m labMachine) Reachable() bool {
	if m.s.PID() <= 0 || syscall.Kill(m.s.PID(), 0) != nil {
		return false
	}
	c, err := net.DialTimeout("tcp", m.s.SSHAddr(), 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Attach gives the lab machine an Elastic IP's traffic, what EC2's
// one-to-one NAT does: a route to ip through the container on the host,
// and ip on the container's interface.
func (m labMachine) Attach(ip string) error {
	if out, err := exec.Command("ip", "route", "replace", ip+"/32", "via", m.s.Addr.String()).CombinedOutput(); err != nil {
		return fmt.Errorf("ip route replace %s: %v %s", ip, err, out)
	}
	if out, err := exec.Command("nsenter", "-t", fmt.Sprint(m.s.PID()), "-n", "--", "ip", "addr", "replace", ip+"/32", "dev", "host0").CombinedOutput(); err != nil {
		return fmt.Errorf("ip addr add %s in %s: %v %s", ip, m.s.Name, err, out)
	}
	return nil
}

// Detach undoes Attach; the container may be gone already.
func (m labMachine) Detach(ip string) error {
	exec.Command("ip", "route", "del", ip+"/32", "via", m.s.Addr.String()).Run()
	exec.Command("nsenter", "-t", fmt.Sprint(m.s.PID()), "-n", "--", "ip", "addr", "del", ip+"/32", "dev", "host0").Run()
	return nil
}

// TestHeal: an environment of one server with an Elastic IP, deploying
// through S3, serves the example app at the EIP; its server is killed (its
// container stopped, as a kernel panic or a lost host ends an instance);
// `jepush heal test` finds it failing its status check, replaces it and
// moves the EIP; the replacement fetches the live release itself and the
// app is served at the same address again.
func TestHeal(t *testing.T) {
	t.Parallel() // mostly waiting (docs/lab.md: lab tests in parallel)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	w := newEC2World(t, fmt.Sprintf("elastic_ip = true\ndeploy = \"s3\"\nserver_s3_endpoint = \"http://s3.jecloud.test:%d\"\n", port))
	w.cloud.s3, w.cloud.s3Port = w.s3, port
	t.Cleanup(func() { // routes of addresses still attached at the end
		for ip := range w.fake.Addresses() {
			exec.Command("ip", "route", "del", ip+"/32").Run()
		}
	})

	out, err := w.jepushIn("", w.app, "test")
	t.Logf("first push: %s", out)
	if err != nil {
		t.Fatalf("jepush: %v", err)
	}
	var eip string
	for ip := range w.fake.Addresses() {
		eip = ip
	}
	if eip == "" {
		t.Fatal("no elastic IP allocated")
	}
	contains(t, "first push", out, "elastic IP "+eip+" allocated", "associated with")
	get := func() string {
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get("http://" + eip + "/")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return ""
		}
		return string(b)
	}
	eventually(t, 60*time.Second, "the app at the elastic IP", func() bool { return strings.Contains(get(), "hello from JeCloud") })
	old := w.cloud.booted[0]

	// SIGKILL the server: its container stops; the instance still "runs".
	if err := old.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != "" {
		t.Fatalf("the app still answers at %s after its server stopped: %q", eip, got)
	}
	out, err = w.jepushIn("", "heal", "--dir", w.app, "test", "--dry-run")
	if err != nil {
		t.Fatalf("heal --dry-run: %v\n%s", err, out)
	}
	contains(t, "heal --dry-run", out, "hello-test-1", "needs replacing", "fails its instance status check")

	start := time.Now()
	out, err = w.jepushIn("", "heal", "--dir", w.app, "test")
	took := time.Since(start)
	t.Logf("jepush heal took %s:\n%s", took.Round(100*time.Millisecond), out)
	if err != nil {
		t.Fatalf("heal: %v", err)
	}
	contains(t, "heal", out, "hello-test-1", "replaced", "elastic IP "+eip+" is on the replacement", "healed in")
	if len(w.cloud.booted) != 2 {
		t.Fatalf("%d servers booted, want 2 (the first and its replacement)", len(w.cloud.booted))
	}
	served := time.Now()
	eventually(t, 120*time.Second, "the app at the elastic IP after heal", func() bool { return strings.Contains(get(), "hello from JeCloud") })
	t.Logf("served again at %s %s after heal returned (%s after it started)", eip, time.Since(served).Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))

	out, err = w.jepushIn("", "heal", "--dir", w.app, "test")
	if err != nil {
		t.Fatalf("second heal: %v\n%s", err, out)
	}
	contains(t, "second heal", out, "every server is healthy")
}
