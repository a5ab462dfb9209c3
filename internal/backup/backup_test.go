package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
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

// TestEncryptedBackups: with backups.age_recipients set, what leaves the
// server is age ciphertext (the dump cannot be found in the bucket); a
// restore decrypts with the identity file, root-only, and refuses without
// it, with a readable one, or with an identity it was not encrypted for.
func TestEncryptedBackups(t *testing.T) {
	srv, _, inst := setup(t, 14)
	ctx := t.Context()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := age.GenerateX25519Identity()
	conf := fmt.Sprintf(`{"backups": {"bucket": %q, "endpoint": %q, "age_recipients": [%q]}}`, srv.Bucket, srv.Endpoint, id.Recipient().String())
	if err := os.WriteFile(filepath.Join(inst.Root, "sys", "server.json"), []byte(conf), 0o640); err != nil {
		t.Fatal(err)
	}
	s, err := backup.ReadSettings(inst.Root)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("customer-card-4242424242424242 ")
	svc := &memService{data: bytes.Repeat(secret, 5000)}
	m, err := backup.Backup(ctx, s, svc, inst, t.Output())
	if err != nil {
		t.Fatal(err)
	}
	if m.Encryption != "age" || !strings.HasSuffix(m.Key, ".zst.age") || m.Name() != strings.TrimSuffix(path.Base(m.Key), ".zst.age") {
		t.Errorf("manifest %+v, name %s", m, m.Name())
	}
	out, err := srv.Client(t).GetObject(ctx, &s3.GetObjectInput{Bucket: &srv.Bucket, Key: &m.Key})
	if err != nil {
		t.Fatal(err)
	}
	obj, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.HasPrefix(obj, []byte("age-encryption.org/v1\n")) || bytes.Contains(obj, []byte("customer-card")) {
		t.Fatalf("the object in S3 is not age ciphertext (%d bytes): %.40q", len(obj), obj)
	}
	if ms, err := backup.List(ctx, s, inst); err != nil || len(ms) != 1 || ms[0].Key != m.Key {
		t.Fatalf("List: %v %+v", err, ms)
	}

	keyFile := backup.IdentityFile(inst.Root)
	for _, tc := range []struct {
		name    string
		key     string // "": no identity file
		mode    os.FileMode
		wantErr string
	}{
		{"no identity", "", 0, "this backup is encrypted (age): put the identity"},
		{"identity readable by others", id.String(), 0o644, "is readable by others (mode 0644)"},
		{"another identity", other.String(), 0o600, "is the identity one of the recipients"},
		{"its identity", id.String(), 0o600, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(keyFile)
			if tc.key != "" {
				if err := os.WriteFile(keyFile, []byte("# created by age-keygen\n"+tc.key+"\n"), tc.mode); err != nil {
					t.Fatal(err)
				}
				os.Chmod(keyFile, tc.mode)
			}
			svc.restored = nil
			_, err := backup.Restore(ctx, s, svc, inst, "", t.Output())
			if tc.wantErr == "" {
				if err != nil || !bytes.Equal(svc.restored, svc.data) {
					t.Fatalf("Restore: %v (%d bytes restored)", err, len(svc.restored))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || svc.restored != nil {
				t.Fatalf("Restore: %v (restored %d bytes); want a refusal with %q", err, len(svc.restored), tc.wantErr)
			}
		})
	}
	t.Run("bad recipient", func(t *testing.T) {
		conf := fmt.Sprintf(`{"backups": {"bucket": %q, "age_recipients": ["ssh-rsa AAAA"]}}`, srv.Bucket)
		os.WriteFile(filepath.Join(inst.Root, "sys", "server.json"), []byte(conf), 0o640)
		if _, err := backup.ReadSettings(inst.Root); err == nil || !strings.Contains(err.Error(), "backups.age_recipients") {
			t.Fatalf("ReadSettings: %v", err)
		}
	})
}
