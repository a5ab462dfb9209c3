package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/backup"
	"github.com/jecloud/jecloud/internal/backup/s3test"
	"github.com/jecloud/jecloud/internal/state"
)

// TestBackupCommands backs up a real redis-server to a real S3 server
// (versitygw) through `jeagent backup`, lists it, and checks what `status`
// says about fresh, stale and failed backups. Restores need systemd: the
// end-to-end test (e2e) runs them.
func TestBackupCommands(t *testing.T) {
	const server = "/usr/bin/redis-server"
	if _, err := os.Stat(server); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing (apt-get install redis-server)", server)
		}
		t.Skip("redis-server is not installed")
	}
	srv := s3test.Start(t, "127.0.0.1")
	root := t.TempDir()
	dir := filepath.Join(root, "shop", "prod")
	live := filepath.Join(dir, "source", "versions", "aaaaaaaaaaaa")
	os.MkdirAll(live, 0o755)
	os.MkdirAll(filepath.Join(root, "sys"), 0o755)
	os.WriteFile(filepath.Join(live, "jecloud.toml"), []byte("[services]\nredis = \"7\"\n"), 0o644)
	os.Symlink("aaaaaaaaaaaa", filepath.Join(dir, "source", "versions", "current"))
	os.WriteFile(filepath.Join(dir, "app.json"), []byte(`{"current_version": "aaaaaaaaaaaa"}`), 0o644)

	// Backups off: a clear error naming the file and the fix.
	r := run(t, root, nil, nil, "backup", "shop", "prod", "redis")
	if r.code == 0 || !strings.Contains(r.stderr, "backups are off") || !strings.Contains(r.stderr, filepath.Join(root, "sys", "server.json")) {
		t.Errorf("backup with backups off: %+v", r)
	}
	os.WriteFile(filepath.Join(root, "sys", "server.json"), []byte(fmt.Sprintf(`{"backups": {"bucket": %q, "endpoint": %q, "schedule": "hourly", "keep": 2}}`, srv.Bucket, srv.Endpoint)), 0o644)
	os.WriteFile(backup.CredentialsFile(root), []byte(srv.Env()), 0o600)

	// Declared, never backed up: stale.
	st := status(t, root)
	if b := st.Backups["redis"]; b == nil || !b.Stale || b.MaxAge != "2h0m0s" {
		t.Errorf("status before any backup: %+v", b)
	}
	if r := run(t, root, nil, nil, "status"); !strings.Contains(r.stdout, "backup:     redis    never  STALE") {
		t.Errorf("status text: %s", r.stdout)
	}

	// Not set up: the failure is recorded and shown.
	r = run(t, root, nil, nil, "backup", "shop", "prod", "redis")
	if r.code == 0 || !strings.Contains(r.stderr, "the service is not set up for this app environment") {
		t.Errorf("backup of a missing instance: %+v", r)
	}
	if b := status(t, root).Backups["redis"]; b == nil || b.LastError == "" || !b.Stale {
		t.Errorf("a failed backup is not in status: %+v", b)
	}

	// A real instance.
	port, pw := startRedis(t, dir)
	cli := func(args ...string) string {
		cmd := exec.Command("/usr/bin/redis-cli", append([]string{"-p", fmt.Sprint(port)}, args...)...)
		cmd.Env = append(os.Environ(), "REDISCLI_AUTH="+pw)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli: %v: %s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	cli("SET", "visits", "7")
	var names []string
	for range 3 {
		r = run(t, root, nil, nil, "backup", "shop", "prod", "redis", "--json")
		if r.code != 0 {
			t.Fatalf("backup: %+v", r)
		}
		var m backup.Manifest
		if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || m.Size == 0 || len(m.SHA256) != 64 || m.Service != "redis" {
			t.Fatalf("manifest %q: %v", r.stdout, err)
		}
		names = append(names, m.Name())
		time.Sleep(1100 * time.Millisecond) // backups are named by the second
	}
	if strings.Contains(r.stderr, pw) || strings.Contains(r.stdout, pw) {
		t.Error("the Redis password is in the output")
	}
	b := status(t, root).Backups["redis"]
	if b == nil || b.Stale || b.LastError != "" || b.Size == 0 || !strings.HasSuffix(b.Key, names[2]+".zst") {
		t.Errorf("status after backups: %+v", b)
	}

	// keep 2: the oldest is gone.
	var list struct{ Backups []backup.Manifest }
	r = run(t, root, nil, nil, "backups", "shop", "prod", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("backups --json: %v: %+v", err, r)
	}
	if len(list.Backups) != 2 || list.Backups[0].Name() != names[2] || list.Backups[1].Name() != names[1] {
		t.Errorf("backups after 3 with keep 2: %+v (made %v)", list.Backups, names)
	}
	r = run(t, root, nil, nil, "backups", "shop", "prod", "redis")
	if !strings.Contains(r.stdout, names[2]) || strings.Contains(r.stdout, names[0]) {
		t.Errorf("backups text: %+v", r)
	}

	// An old success is stale again.
	if _, err := state.UpdateApp(filepath.Join(dir, "app.json"), func(a *state.App) error {
		a.Backups["redis"].LastSuccess = time.Now().Add(-3 * time.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if b := status(t, root).Backups["redis"]; !b.Stale {
		t.Errorf("a 3 h old backup on an hourly schedule is not stale: %+v", b)
	}

	// Unknown service and unknown backup.
	if r := run(t, root, nil, nil, "backup", "shop", "prod", "postgres"); r.code == 0 || !strings.Contains(r.stderr, `"postgres"`) || !strings.Contains(r.stderr, "mongodb, redis") {
		t.Errorf("unknown service: %+v", r)
	}
	if r := run(t, root, nil, nil, "restore", "shop", "prod", "redis", "20000101T000000Z"); r.code == 0 || !strings.Contains(r.stderr, `no complete backup "20000101T000000Z"`) {
		t.Errorf("unknown backup: %+v", r)
	}
	if cli("GET", "visits") != "7" {
		t.Error("the data changed")
	}
}

type statusApp struct {
	Backups map[string]*struct {
		state.BackupRecord
		Stale  bool   `json:"stale"`
		MaxAge string `json:"max_age"`
	} `json:"backups"`
}

func status(t *testing.T, root string) statusApp {
	t.Helper()
	r := run(t, root, nil, nil, "status", "shop", "prod", "--json")
	var out struct{ Apps []statusApp }
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Apps) != 1 {
		t.Fatalf("status --json: %v: %+v", err, r)
	}
	return out.Apps[0]
}

// startRedis runs redis-server for the app environment in dir the way the
// Redis hook sets it up (port in ports.json, password file).
func startRedis(t *testing.T, dir string) (int, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	pw := "0123456789abcdef0123456789abcdef0123456789abcdef"
	os.WriteFile(filepath.Join(dir, "ports.json"), []byte(fmt.Sprintf(`{"redis": %d}`, port)), 0o644)
	os.WriteFile(filepath.Join(dir, "redis.password"), []byte(pw+"\n"), 0o600)
	data := filepath.Join(dir, "redis")
	os.MkdirAll(data, 0o750)
	conf := fmt.Sprintf("bind 127.0.0.1\nport %d\nrequirepass %s\ndir %s\nappendonly yes\nrepl-diskless-sync-delay 0\n", port, pw, data)
	os.WriteFile(filepath.Join(dir, "redis.conf"), []byte(conf), 0o600)
	cmd := exec.Command("/usr/bin/redis-server", filepath.Join(dir, "redis.conf"))
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return port, pw
		}
		if i > 100 {
			t.Fatalf("redis-server does not listen: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
