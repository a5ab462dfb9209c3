package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jecloud/jecloud/internal/backup"
	"github.com/jecloud/jecloud/internal/backup/s3test"
	"github.com/jecloud/jecloud/internal/state"
)

// memService is a service whose data is a byte string.
type memService struct {
	data      []byte
	restored  []byte
	restores  int
	dumpError error
}

func (m *memService) Dump(_ context.Context, _ backup.Instance, w io.Writer, _ io.Writer) error {
	if m.dumpError != nil {
		return m.dumpError
	}
	_, err := w.Write(m.data)
	return err
}

func (m *memService) Restore(_ context.Context, _ backup.Instance, r io.Reader, _ io.Writer) error {
	m.restores++
	b, err := io.ReadAll(r)
	m.restored = b
	return err
}

// setup makes a state root whose server.json points at a real S3 server.
func setup(t *testing.T, keep int) (*s3test.Server, backup.Settings, backup.Instance) {
	srv := s3test.Start(t, "127.0.0.1")
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "sys"), 0o755)
	os.MkdirAll(filepath.Join(root, "shop", "prod"), 0o755)
	conf := fmt.Sprintf(`{"backups": {"bucket": %q, "endpoint": %q, "keep": %d}}`, srv.Bucket, srv.Endpoint, keep)
	if err := os.WriteFile(filepath.Join(root, "sys", "server.json"), []byte(conf), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(backup.CredentialsFile(root), []byte(srv.Env()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "shop", "prod", "app.json"), []byte(`{"current_version": "aaaaaaaaaaaa", "mine": 1}`), 0o640); err != nil {
		t.Fatal(err)
	}
	s, err := backup.ReadSettings(root)
	if err != nil {
		t.Fatal(err)
	}
	return srv, s, backup.Instance{Root: root, App: "shop", Env: "prod", Service: "redis"}
}

func readApp(t *testing.T, inst backup.Instance) state.App {
	var a state.App
	if err := state.Read(filepath.Join(inst.Dir(), "app.json"), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	_, s, inst := setup(t, 14)
	ctx := t.Context()
	svc := &memService{data: bytes.Repeat([]byte("data of redis "), 100000)}
	m, err := backup.Backup(ctx, s, svc, inst, t.Output())
	if err != nil {
		t.Fatal(err)
	}
	if m.Size <= 0 || m.Size >= int64(len(svc.data)) || len(m.SHA256) != 64 || !strings.HasPrefix(m.Key, "jecloud/shop/prod/redis/") {
		t.Errorf("manifest %+v", m)
	}
	a := readApp(t, inst)
	r := a.Backups["redis"]
	if r == nil || r.Key != m.Key || r.SHA256 != m.SHA256 || r.LastSuccess.IsZero() || r.LastError != "" {
		t.Errorf("app.json record: %+v", r)
	}
	if a.Extra["mine"] == nil {
		t.Error("an unknown key of app.json was lost")
	}
	if _, err := backup.Restore(ctx, s, svc, inst, "", t.Output()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(svc.restored, svc.data) {
		t.Errorf("restored %d bytes, want the %d dumped", len(svc.restored), len(svc.data))
	}
	// Nothing of the download stays behind.
	entries, _ := os.ReadDir(inst.Dir())
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") && e.Name() != ".app.json.lock" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestDamagedBackupIsNotRestored(t *testing.T) {
	srv, s, inst := setup(t, 14)
	ctx := t.Context()
	svc := &memService{data: []byte("precious")}
	m, err := backup.Backup(ctx, s, svc, inst, t.Output())
	if err != nil {
		t.Fatal(err)
	}
	// Someone overwrites the object: same size, other bytes.
	c := srv.Client(t)
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(m.Key)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(out.Body)
	out.Body.Close()
	b[len(b)/2] ^= 0xff
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(m.Key), Body: bytes.NewReader(b)}); err != nil {
		t.Fatal(err)
	}
	_, err = backup.Restore(ctx, s, svc, inst, m.Name(), t.Output())
	if err == nil || !strings.Contains(err.Error(), "damaged") || svc.restores != 0 {
		t.Fatalf("restore of a damaged backup: %v (Restore called %d times)", err, svc.restores)
	}
	if _, err := backup.Restore(ctx, s, svc, inst, "20000101T000000Z", t.Output()); err == nil || !strings.Contains(err.Error(), "jeagent backups") {
		t.Errorf("restore of a backup that does not exist: %v", err)
	}
}

func TestRetentionAndFailures(t *testing.T) {
	_, s, inst := setup(t, 2)
	ctx := t.Context()
	svc := &memService{}
	var names []string
	for i := range 4 {
		svc.data = []byte(fmt.Sprintf("version %d", i))
		m, err := backup.Backup(ctx, s, svc, inst, t.Output())
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, m.Name())
		time.Sleep(1100 * time.Millisecond) // names are per second
	}
	ms, err := backup.List(ctx, s, inst)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Name() != names[3] || ms[1].Name() != names[2] {
		t.Fatalf("kept %v, want the newest two of %v", ms, names)
	}
	// The newest backup is what a restore without a name gets.
	if _, err := backup.Restore(ctx, s, svc, inst, "", t.Output()); err != nil || string(svc.restored) != "version 3" {
		t.Fatalf("restore: %q, %v", svc.restored, err)
	}
	// A failed backup records its error and keeps the last success.
	before := readApp(t, inst).Backups["redis"]
	svc.dumpError = errors.New("redis-cli: connection refused")
	if _, err := backup.Backup(ctx, s, svc, inst, t.Output()); err == nil {
		t.Fatal("a failing dump did not fail the backup")
	}
	after := readApp(t, inst).Backups["redis"]
	if !strings.Contains(after.LastError, "connection refused") || !after.LastSuccess.Equal(before.LastSuccess) || after.Key != before.Key {
		t.Errorf("after a failure: %+v (before %+v)", after, before)
	}
	if ms, _ := backup.List(ctx, s, inst); len(ms) != 2 {
		t.Errorf("a failed backup changed the list: %v", ms)
	}
}

func TestSettings(t *testing.T) {
	for _, tc := range []struct {
		json, err string
	}{
		{``, "backups are off"},
		{`{}`, "backups are off"},
		{`{"backups": {"bucket": "b"}}`, ""},
		{`{"backups": {"bucket": "b", "schedule": "Mon *-*-* 03:00"}}`, "max_age"},
		{`{"backups": {"bucket": "b", "max_age": "soon"}}`, "max_age"},
		{`{"backups": {"bucket": 3}}`, "server.json"},
	} {
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "sys"), 0o755)
		if tc.json != "" {
			os.WriteFile(filepath.Join(root, "sys", "server.json"), []byte(tc.json), 0o640)
		}
		s, err := backup.ReadSettings(root)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.json, err)
		case tc.err == "" && (s.Prefix != "jecloud" || s.Keep != 14 || s.Stale() != 26*time.Hour):
			t.Errorf("%s: defaults %+v", tc.json, s)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one about %q", tc.json, err, tc.err)
		}
	}
}
