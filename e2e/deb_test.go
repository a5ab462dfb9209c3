//go:build e2e

package e2e_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/lab"
)

// deb builds the packages with `make deb` into dir and returns this
// machine's architecture's one.
func deb(t *testing.T, dir string) string {
	t.Helper()
	cmd := exec.Command("make", "-s", "deb", "BIN="+dir)
	cmd.Dir = repoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	m, _ := filepath.Glob(filepath.Join(dir, "jeagent_*_"+runtime.GOARCH+".deb"))
	if len(m) != 1 {
		t.Fatalf("make deb made %v", m)
	}
	return m[0]
}

// TestDebPackage installs the .deb on a fresh server: the timer runs from
// the package's own units, the example app pushed through them is served,
// and again after a reboot; removing the package stops the timer but keeps
// /var/cloud. Two builds of the package
// are identical, byte for byte.
func TestDebPackage(t *testing.T) {
	lab.Require(t)
	a, b := deb(t, t.TempDir()), deb(t, t.TempDir())
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if !bytes.Equal(da, db) {
		t.Errorf("two builds of %s differ: sha256 %x and %x", filepath.Base(a), sha256.Sum256(da), sha256.Sum256(db))
	}
	_, jepush := binaries(t)
	srv := lab.BootWith(t, 1, lab.Options{Persistent: true})[0]
	if err := srv.CopyIn(a, "/tmp/jeagent.deb"); err != nil {
		t.Fatal(err)
	}
	out := srv.MustExec("dpkg", "-i", "/tmp/jeagent.deb")
	t.Logf("dpkg -i:\n%s", out)
	contains(t, "systemctl", srv.MustExec("systemctl", "is-enabled", "jeagent-rollforward.timer"), "enabled")
	contains(t, "systemctl", srv.MustExec("systemctl", "is-active", "jeagent-rollforward.timer"), "active")
	contains(t, "the service", srv.MustExec("systemctl", "cat", "jeagent-rollforward.service"),
		"/lib/systemd/system/jeagent-rollforward.service", "ExecStart=/usr/bin/jeagent-tick --agent /usr/bin/jeagent")
	if out, err := srv.Exec(t.Context(), "ls", "/etc/systemd/system/jeagent-rollforward.service"); err == nil {
		t.Errorf("jeagent init wrote its own copy over the package's units: %s", out)
	}
	// Installing again (an upgrade) changes nothing.
	contains(t, "dpkg -i again", srv.MustExec("dpkg", "-i", "/tmp/jeagent.deb"), "nothing to do")

	// The example app, pushed through the package's units, is served...
	installMirror(t, srv)
	cmd := exec.Command(jepush, filepath.Join(repoRoot(), "examples", "hello"), "prod", "--host", "root@"+srv.Addr.String())
	cmd.Env = append(os.Environ(), "HOME="+lab.SSHHome(t, srv), "SSH_AUTH_SOCK=")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "started jeagent-rollforward.service") {
		t.Fatalf("push: %v\n%s", err, out)
	}
	v := readApp(t, srv, "hello", "prod").CurrentVersion
	url := "http://" + srv.Addr.String() + "/" // the front door
	served := func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), "release "+v)
	}
	eventually(t, 10*time.Second, "the example app to answer at "+url, served)
	// ...and again after the server reboots.
	if err := srv.Reboot(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the example app to answer after the reboot", served)
	contains(t, "the timer after the reboot", srv.MustExec("systemctl", "is-active", "jeagent-rollforward.timer"), "active")

	// Removal stops the timer and keeps the apps' state.
	srv.MustExec("dpkg", "-r", "jeagent")
	time.Sleep(200 * time.Millisecond)
	if out, _ := srv.Exec(t.Context(), "systemctl", "is-active", "jeagent-rollforward.timer"); strings.TrimSpace(out) == "active" {
		t.Error("the timer is still active after dpkg -r")
	}
	if a := readApp(t, srv, "hello", "prod"); a.CurrentVersion != v {
		t.Errorf("dpkg -r lost the state: %+v", a)
	}
}
