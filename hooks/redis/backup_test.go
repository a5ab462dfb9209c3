package redis

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/hooks/internal/svcfile"
	"github.com/jecloud/jecloud/internal/backup"
	"github.com/jecloud/jecloud/internal/ports"
)

// TestDumpRestoreRealRedis dumps a running redis-server, changes its data,
// restores the dump and checks the data is back exactly, with the data it
// replaced kept aside. The unit is a plain process here (Stop/Start).
func TestDumpRestoreRealRedis(t *testing.T) {
	const server = "/usr/bin/redis-server"
	if _, err := os.Stat(server); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing (apt-get install redis-server)", server)
		}
		t.Skip("redis-server is not installed")
	}
	root := t.TempDir()
	inst := backup.Instance{Root: root, App: "shop", Env: "prod", Service: "redis"}
	dir := inst.Dir()
	os.MkdirAll(dir, 0o755)
	pw, err := svcfile.Password(filepath.Join(dir, "redis.password"))
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	b, _ := json.Marshal(map[string]int{"redis": port})
	os.WriteFile(filepath.Join(dir, ports.FileName), b, 0o644)
	i := instance{app: "shop", env: "prod", dir: dir, port: port, password: pw}
	os.MkdirAll(i.dataDir(), 0o750)
	if _, err := svcfile.WriteIfChanged(i.confPath(), i.conf(), -1); err != nil {
		t.Fatal(err)
	}

	var proc *exec.Cmd
	starts := 0
	h := &Hook{Server: server}
	h.Start = func(unit string) error {
		if unit != i.unit() {
			t.Errorf("started %s", unit)
		}
		starts++
		proc = exec.Command(server, i.confPath())
		proc.Stdout, proc.Stderr = io.Discard, io.Discard
		return proc.Start()
	}
	h.Stop = func(string) error {
		proc.Process.Signal(os.Interrupt)
		return proc.Wait()
	}
	t.Cleanup(func() {
		if proc != nil && proc.ProcessState == nil {
			proc.Process.Kill()
			proc.Wait()
		}
	})
	ctx := context.Background()
	h.Start(i.unit())
	if err := ping(ctx, port, pw, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(h.cli(), append([]string{"-p", strconv.Itoa(port)}, args...)...)
		cmd.Env = append(os.Environ(), "REDISCLI_AUTH="+pw)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	cli("SET", "visits", "41")
	cli("RPUSH", "queue", "a", "b", "c")
	cli("HSET", "user:1", "name", "Ada", "email", "ada@example.com")

	var dump, log bytes.Buffer
	if err := h.Dump(ctx, inst, &dump, &log); err != nil {
		t.Fatalf("dump: %v\n%s", err, log.String())
	}
	if !bytes.HasPrefix(dump.Bytes(), []byte("REDIS")) {
		t.Fatalf("the dump is not an RDB file: %q", dump.Bytes()[:min(16, dump.Len())])
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".redis.rdb.tmp-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}

	cli("SET", "visits", "99")
	cli("DEL", "queue")
	cli("SET", "added-after", "x")

	if err := h.Restore(ctx, inst, bytes.NewReader(dump.Bytes()), &log); err != nil {
		t.Fatalf("restore: %v\n%s", err, log.String())
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"GET", "visits"}, "41"},
		{[]string{"LRANGE", "queue", "0", "-1"}, "a\nb\nc"},
		{[]string{"HGET", "user:1", "email"}, "ada@example.com"},
		{[]string{"EXISTS", "added-after"}, "0"},
		{[]string{"DBSIZE"}, "3"},
	} {
		if got := cli(c.args...); got != c.want {
			t.Errorf("%v = %q after the restore, want %q", c.args, got, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "redis.before-restore", "appendonlydir")); err != nil {
		t.Errorf("the replaced data was not kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "redis.restoring")); !os.IsNotExist(err) {
		t.Errorf("redis.restoring left behind: %v", err)
	}
	// The restored data is the instance's own from now on: it survives a restart.
	cli("SET", "visits", "42")
	h.Stop(i.unit())
	h.Start(i.unit())
	if err := ping(ctx, port, pw, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := cli("GET", "visits"); got != "42" {
		t.Errorf("after a restart visits = %q, want 42", got)
	}
}

func TestBackupNotSetUp(t *testing.T) {
	inst := backup.Instance{Root: t.TempDir(), App: "shop", Env: "prod", Service: "redis"}
	err := (&Hook{Server: "/usr/bin/redis-server"}).Dump(context.Background(), inst, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("a dump of an instance that was never set up succeeded")
	}
}
