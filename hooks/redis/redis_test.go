package redis

import (
	"context"
	"github.com/jecloud/jecloud/hooks/internal/svcfile"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfRunsRealRedis starts the real redis-server with the config the
// hook writes, and checks the password and persistence settings work.
func TestConfRunsRealRedis(t *testing.T) {
	server := "/usr/bin/redis-server"
	if _, err := os.Stat(server); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing (apt-get install redis-server)", server)
		}
		t.Skip("redis-server is not installed")
	}
	dir := t.TempDir()
	pw, err := svcfile.Password(filepath.Join(dir, "redis.password"))
	if err != nil || len(pw) < 32 {
		t.Fatalf("password %q, %v", pw, err)
	}
	if again, _ := svcfile.Password(filepath.Join(dir, "redis.password")); again != pw {
		t.Error("the password changed on a second call")
	}
	if fi, _ := os.Stat(filepath.Join(dir, "redis.password")); fi.Mode().Perm() != 0o600 {
		t.Errorf("password file mode %v", fi.Mode().Perm())
	}
	i := instance{app: "shop", env: "prod", dir: dir, port: freePort(t), password: pw}
	os.MkdirAll(i.dataDir(), 0o750)
	if _, err := svcfile.WriteIfChanged(i.confPath(), i.conf(), -1); err != nil {
		t.Fatal(err)
	}
	if changed, _ := svcfile.WriteIfChanged(i.confPath(), i.conf(), -1); changed {
		t.Error("an unchanged conf was rewritten")
	}
	cmd := exec.Command(server, i.confPath())
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if err := ping(context.Background(), i.port, pw, 10*time.Second); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if err := pingOnce(i.port, "wrong"); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("a wrong password was accepted: %v", err)
	}
	if _, err := os.Stat(filepath.Join(i.dataDir(), "appendonlydir")); err != nil {
		t.Errorf("append-only persistence is off: %v", err)
	}
	if err := svcfile.SetServiceVar(dir, "REDIS_URL", i.url(), -1); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "services.env"))
	if !strings.Contains(string(b), `REDIS_URL="redis://:`+pw+"@127.0.0.1:") {
		t.Errorf("services.env: %s", b)
	}
}

func TestVersionCheck(t *testing.T) {
	if _, err := os.Stat("/usr/bin/redis-server"); err != nil {
		t.Skip("redis-server is not installed")
	}
	h := New()
	out, _ := exec.Command(h.Server, "--version").Output()
	have := versionRE.FindStringSubmatch(string(out))[1]
	major := strings.Split(have, ".")[0]
	for _, tc := range []struct {
		want string
		ok   bool
	}{{"", true}, {major, true}, {major + ".x", true}, {have, true}, {"1", false}, {major + "9", false}} {
		err := h.ensureServer(tc.want, io.Discard)
		if (err == nil) != tc.ok {
			t.Errorf("ensureServer(%q) with %s: %v", tc.want, have, err)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
