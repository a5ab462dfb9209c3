package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/jecloud/jecloud/internal/bytecount"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/klauspost/compress/zstd"
)

// Manifest describes one complete backup. It is written as KEY.json after
// the backup object itself: an object without one is incomplete.
type Manifest struct {
	Key     string    `json:"key"`
	App     string    `json:"app"`
	Env     string    `json:"env"`
	Service string    `json:"service"`
	Created time.Time `json:"created"`
	Size    int64     `json:"size"`   // bytes of the compressed object
	SHA256  string    `json:"sha256"` // of the compressed object
	Host    string    `json:"host"`
	// Encryption is "age" when the object is encrypted (key NAME.zst.age)
	// with the server's backups.age_recipients; "" when it is not.
	Encryption string `json:"encryption,omitempty"`
}

// Name is the backup's name for `jeagent restore`: its time stamp.
func (m Manifest) Name() string {
	return strings.TrimSuffix(strings.TrimSuffix(path.Base(m.Key), ageSuffix), ".zst")
}

const stamp = "20060102T150405Z"

func (s Settings) dir(inst Instance) string {
	return path.Join(s.Prefix, inst.App, inst.Env, inst.Service) + "/"
}

// Backup dumps the instance through svc, compresses it into a temp file
// beside the app environment's state (memory stays flat), uploads it with
// its manifest, applies the retention policy and records the result in
// app.json.
func Backup(ctx context.Context, s Settings, svc Service, inst Instance, log io.Writer) (Manifest, error) {
	started := state.Now()
	m, err := backup(ctx, s, svc, inst, started, log)
	rerr := record(inst, func(r *state.BackupRecord) {
		r.LastAttempt = started
		if err != nil {
			r.LastError = err.Error()
			return
		}
		r.LastError, r.LastSuccess, r.Key, r.Size, r.SHA256 = "", started, m.Key, m.Size, m.SHA256
	})
	return m, errors.Join(err, rerr)
}

func backup(ctx context.Context, s Settings, svc Service, inst Instance, started time.Time, log io.Writer) (Manifest, error) {
	c, err := s.client(ctx)
	if err != nil {
		return Manifest{}, err
	}
	rs, err := s.recipients()
	if err != nil {
		return Manifest{}, err
	}
	// A ".tmp-" name: the roll-forward removes it if this process dies.
	tmp, err := os.CreateTemp(inst.Dir(), "."+inst.Service+".backup.tmp-*")
	if err != nil {
		return Manifest{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	sum := sha256.New()
	counted := &bytecount.Writer{W: io.MultiWriter(tmp, sum)}
	sealed, err := encryptTo(counted, rs) // dump -> zstd -> age (if set) -> file
	if err != nil {
		return Manifest{}, err
	}
	enc, err := zstd.NewWriter(sealed, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return Manifest{}, err
	}
	if err := svc.Dump(ctx, inst, enc, log); err != nil {
		enc.Close()
		return Manifest{}, fmt.Errorf("dump of %s: %w", inst.Service, err)
	}
	if err := enc.Close(); err != nil {
		return Manifest{}, err
	}
	if err := sealed.Close(); err != nil {
		return Manifest{}, err
	}
	host, _ := os.Hostname()
	m := Manifest{Key: s.dir(inst) + started.UTC().Format(stamp) + ".zst", App: inst.App, Env: inst.Env,
		Service: inst.Service, Created: started, Size: counted.N, SHA256: hex.EncodeToString(sum.Sum(nil)), Host: host}
	if len(rs) > 0 {
		m.Key, m.Encryption = m.Key+ageSuffix, "age"
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return Manifest{}, err
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.Bucket, Key: &m.Key, Body: tmp,
		ContentLength: aws.Int64(m.Size), ContentType: aws.String("application/zstd")}); err != nil {
		return Manifest{}, fmt.Errorf("upload to s3://%s/%s: %w", s.Bucket, m.Key, err)
	}
	mj, _ := json.MarshalIndent(m, "", "  ")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.Bucket, Key: aws.String(m.Key + ".json"),
		Body: strings.NewReader(string(mj)), ContentType: aws.String("application/json")}); err != nil {
		return Manifest{}, fmt.Errorf("upload of the manifest s3://%s/%s.json: %w", s.Bucket, m.Key, err)
	}
	fmt.Fprintf(log, "backed up %s of %s/%s to s3://%s/%s (%d bytes, sha256 %s)\n",
		inst.Service, inst.App, inst.Env, s.Bucket, m.Key, m.Size, m.SHA256)
	if err := retain(ctx, c, s, inst, log); err != nil {
		return m, fmt.Errorf("the backup is done, but the retention policy failed: %w", err)
	}
	return m, nil
}

// List returns the complete backups of the instance, newest first.
func List(ctx context.Context, s Settings, inst Instance) ([]Manifest, error) {
	c, err := s.client(ctx)
	if err != nil {
		return nil, err
	}
	ms, _, err := list(ctx, c, s, inst)
	return ms, err
}

// list returns the manifests, newest first, and the objects that have none.
func list(ctx context.Context, c *s3.Client, s Settings, inst Instance) ([]Manifest, []types.Object, error) {
	objs := map[string]types.Object{}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &s.Bucket, Prefix: aws.String(s.dir(inst))})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("listing s3://%s/%s: %w", s.Bucket, s.dir(inst), err)
		}
		for _, o := range page.Contents {
			objs[aws.ToString(o.Key)] = o
		}
	}
	var ms []Manifest
	var orphans []types.Object
	for key, o := range objs {
		if !strings.HasSuffix(key, ".zst") && !strings.HasSuffix(key, ".zst"+ageSuffix) {
			continue
		}
		if _, ok := objs[key+".json"]; !ok {
			orphans = append(orphans, o)
			continue
		}
		m, err := readManifest(ctx, c, s, key)
		if err != nil {
			return nil, nil, err
		}
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Key > ms[j].Key })
	return ms, orphans, nil
}

func readManifest(ctx context.Context, c *s3.Client, s Settings, key string) (Manifest, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: aws.String(key + ".json")})
	if err != nil {
		return Manifest{}, fmt.Errorf("reading s3://%s/%s.json: %w", s.Bucket, key, err)
	}
	defer out.Body.Close()
	var m Manifest
	if err := json.NewDecoder(io.LimitReader(out.Body, 1<<20)).Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("s3://%s/%s.json: %w", s.Bucket, key, err)
	}
	if m.Key != key {
		return Manifest{}, fmt.Errorf("s3://%s/%s.json describes %q", s.Bucket, key, m.Key)
	}
	return m, nil
}

// retain keeps the newest s.Keep complete backups and deletes older ones,
// and objects without a manifest that are more than a day old (a backup
// that died half way).
func retain(ctx context.Context, c *s3.Client, s Settings, inst Instance, log io.Writer) error {
	ms, orphans, err := list(ctx, c, s, inst)
	if err != nil {
		return err
	}
	var del []string
	for i, m := range ms {
		if i >= s.Keep {
			del = append(del, m.Key, m.Key+".json")
		}
	}
	for _, o := range orphans {
		if o.LastModified != nil && time.Since(*o.LastModified) > 24*time.Hour {
			del = append(del, aws.ToString(o.Key))
		}
	}
	for _, key := range del {
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.Bucket, Key: aws.String(key)}); err != nil {
			return fmt.Errorf("deleting s3://%s/%s: %w", s.Bucket, key, err)
		}
		fmt.Fprintf(log, "retention (keep %d): deleted s3://%s/%s\n", s.Keep, s.Bucket, key)
	}
	return nil
}

// Restore downloads a backup (the newest complete one, or the one named
// by its time stamp), checks its size and SHA-256 against its manifest,
// and only then hands it to svc.Restore.
func Restore(ctx context.Context, s Settings, svc Service, inst Instance, name string, log io.Writer) (Manifest, error) {
	c, err := s.client(ctx)
	if err != nil {
		return Manifest{}, err
	}
	ms, _, err := list(ctx, c, s, inst)
	if err != nil {
		return Manifest{}, err
	}
	var m *Manifest
	for i := range ms {
		if name == "" || ms[i].Name() == name || ms[i].Key == name {
			m = &ms[i]
			break
		}
	}
	if m == nil {
		if name == "" {
			return Manifest{}, fmt.Errorf("no complete backup of %s under s3://%s/%s", inst.Service, s.Bucket, s.dir(inst))
		}
		return Manifest{}, fmt.Errorf("no complete backup %q of %s: `jeagent backups %s %s %s` lists them", name, inst.Service, inst.App, inst.Env, inst.Service)
	}
	f, err := os.CreateTemp(inst.Dir(), "."+inst.Service+".restore.tmp-*") // 0600
	if err != nil {
		return Manifest{}, err
	}
	defer os.Remove(f.Name()) // the download is never kept
	defer f.Close()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: &m.Key})
	if err != nil {
		return Manifest{}, fmt.Errorf("downloading s3://%s/%s: %w", s.Bucket, m.Key, err)
	}
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, sum), io.LimitReader(out.Body, m.Size+1))
	out.Body.Close()
	if err != nil {
		return Manifest{}, fmt.Errorf("downloading s3://%s/%s: %w", s.Bucket, m.Key, err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); n != m.Size || got != m.SHA256 {
		return Manifest{}, fmt.Errorf("s3://%s/%s is damaged (%d bytes, sha256 %s; its manifest says %d bytes, %s): nothing was restored; pick another backup",
			s.Bucket, m.Key, n, got, m.Size, m.SHA256)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Manifest{}, err
	}
	var plain io.Reader = f
	switch m.Encryption {
	case "":
	case "age":
		ids, err := s.identities()
		if err != nil {
			return Manifest{}, fmt.Errorf("restore of s3://%s/%s: %w", s.Bucket, m.Key, err)
		}
		if plain, err = age.Decrypt(f, ids...); err != nil {
			return Manifest{}, fmt.Errorf("restore of s3://%s/%s: %w: nothing was restored; is the identity one of the recipients it was encrypted for?", s.Bucket, m.Key, err)
		}
	default:
		return Manifest{}, fmt.Errorf("s3://%s/%s.json says encryption %q, which this jeagent does not know: nothing was restored", s.Bucket, m.Key, m.Encryption)
	}
	dec, err := zstd.NewReader(plain, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return Manifest{}, err
	}
	defer dec.Close()
	fmt.Fprintf(log, "restoring %s of %s/%s from s3://%s/%s (%s, verified)\n", inst.Service, inst.App, inst.Env, s.Bucket, m.Key, m.Created.Format(time.RFC3339))
	if err := svc.Restore(ctx, inst, dec, log); err != nil {
		return Manifest{}, fmt.Errorf("restore of %s: %w", inst.Service, err)
	}
	return *m, nil
}

// record updates the service's backup record in app.json.
func record(inst Instance, fn func(*state.BackupRecord)) error {
	_, err := state.UpdateApp(inst.Dir()+"/app.json", func(a *state.App) error {
		if a.Backups == nil {
			a.Backups = map[string]*state.BackupRecord{}
		}
		r := a.Backups[inst.Service]
		if r == nil {
			r = &state.BackupRecord{}
			a.Backups[inst.Service] = r
		}
		fn(r)
		return nil
	})
	return err
}
