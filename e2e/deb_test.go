//go:build e2e

package e2e_test

import (
	"bytes"
	"crypto/sha256"
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
// the package's own units, a push deploys through them, and removing the
// package stops the timer but keeps /var/cloud. Two builds of the package
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
	srv := lab.Boot(t, 1)[0]
	if err := srv.CopyIn(a, "/tmp/jeagent.deb"); err != nil {
		t.Fatal(err)
	}
	out := srv.MustExec("dpkg", "-i", "/tmp/jeagent.deb")
	t.Logf("dpkg -i:\n%s", out)
	contains(t, "systemctl", srv.MustExec("systemctl", "is-enabled", "jeagent-rollforward.timer"), "enabled")
	contains(t, "systemctl", srv.MustExec("systemctl", "is-active", "jeagent-rollforward.timer"), "active")
	contains(t, "the service", srv.MustExec("systemctl", "cat", "jeagent-rollforward.service"),
		"/lib/systemd/system/jeagent-rollforward.service", "ExecStart=/usr/bin/jeagent rollforward")
	if out, err := srv.Exec(t.Context(), "ls", "/etc/systemd/system/jeagent-rollforward.service"); err == nil {
		t.Errorf("jeagent init wrote its own copy over the package's units: %s", out)
	}
	// Installing again (an upgrade) changes nothing.
	contains(t, "dpkg -i again", srv.MustExec("dpkg", "-i", "/tmp/jeagent.deb"), "nothing to do")

	// A push goes through the package's units.
	app := t.TempDir()
	writeFiles(t, app, map[string]string{"index.html": "hello\n"})
	cmd := exec.Command(jepush, app, "prod", "--host", "root@"+srv.Addr.String())
	cmd.Env = append(os.Environ(), "HOME="+lab.SSHHome(t, srv), "SSH_AUTH_SOCK=")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "started jeagent-rollforward.service") {
		t.Fatalf("push: %v\n%s", err, out)
	}
	v := readApp(t, srv, filepath.Base(app), "prod").CurrentVersion
	if v == "" {
		t.Fatal("nothing live after the push")
	}

	// Removal stops the timer and keeps the apps' state.
	srv.MustExec("dpkg", "-r", "jeagent")
	time.Sleep(200 * time.Millisecond)
	if out, _ := srv.Exec(t.Context(), "systemctl", "is-active", "jeagent-rollforward.timer"); strings.TrimSpace(out) == "active" {
		t.Error("the timer is still active after dpkg -r")
	}
	if a := readApp(t, srv, filepath.Base(app), "prod"); a.CurrentVersion != v {
		t.Errorf("dpkg -r lost the state: %+v", a)
	}
}
