package globalstate_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jecloud/jecloud/internal/backup/s3test"
	"github.com/jecloud/jecloud/internal/globalstate"
)

func version(i int) string { return fmt.Sprintf("%012x", i) }

func newStore(t *testing.T) (*globalstate.Store, *s3.Client) {
	srv := s3test.Start(t, "127.0.0.1")
	c := srv.Client(t)
	return &globalstate.Store{S3: c, Bucket: srv.Bucket}, c
}

func put(t *testing.T, c *s3.Client, st *globalstate.Store, body string) {
	t.Helper()
	if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &st.Bucket, Key: aws.String(globalstate.Key("shop", "prod")), Body: strings.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

// TestUpdateKeepsHandEdits: a person's keys survive the programs' updates.
func TestUpdateKeepsHandEdits(t *testing.T) {
	st, c := newStore(t)
	ctx := t.Context()
	e, etag, err := st.Get(ctx, "shop", "prod")
	if err != nil || etag != "" || e.App != "shop" || e.Env != "prod" || e.Requested != nil {
		t.Fatalf("a missing document: %+v %q %v", e, etag, err)
	}
	if _, err := st.Update(ctx, "shop", "prod", func(e *globalstate.Env) error {
		e.Servers = append(e.Servers, globalstate.Server{Name: "web1", Host: "10.0.0.1"})
		e.Request(version(1), "ada@laptop", time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	put(t, c, st, `{"app": "shop", "env": "prod", "notes": "moved to eu-west-1 in May",
  "requested": {"version": "000000000001", "date": "2026-12-01T03:00:00Z"},
  "servers": [{"name": "web1", "host": "10.0.0.1", "zone": "b"}]}`)
	e, err = st.Update(ctx, "shop", "prod", func(e *globalstate.Env) error {
		e.Request(version(2), "bob@ci", time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC))
		e.Server("web1").Observed = &globalstate.Observed{CurrentVersion: version(1), Date: time.Now().UTC()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &st.Bucket, Key: aws.String(globalstate.Key("shop", "prod"))})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(out.Body)
	for _, want := range []string{`"notes": "moved to eu-west-1 in May"`, `"zone": "b"`, `"version": "000000000002"`, `"by": "bob@ci"`, `"current_version": "000000000001"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the document lacks %s:\n%s", want, b)
		}
	}
	if e.Requested.Version != version(2) || len(e.History) != 1 {
		t.Errorf("requested %+v, history %+v", e.Requested, e.History)
	}
}

// TestRacingWriters: 16 writers, 5 updates each, on one document: every
// update is there at the end.
func TestRacingWriters(t *testing.T) {
	st, _ := newStore(t)
	const writers, each = 16, 5
	var calls atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_, err := st.Update(context.Background(), "shop", "prod", func(e *globalstate.Env) error {
					calls.Add(1)
					e.Request(version(w*each+i+1), fmt.Sprintf("writer%d", w), time.Now().UTC())
					return nil
				})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	e, _, err := st.Get(t.Context(), "shop", "prod")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range e.History {
		seen[r.Version] = true
	}
	if len(e.History) != writers*each || len(seen) != writers*each {
		t.Errorf("%d requests in the history (%d distinct), want %d: updates were lost", len(e.History), len(seen), writers*each)
	}
	t.Logf("summary: %d racing writers x %d updates: %d kept, %d lost; %d attempts (%.1f per update)",
		writers, each, len(seen), writers*each-len(seen), calls.Load(), float64(calls.Load())/float64(writers*each))
}

// TestConcurrentChangeRetried: a write between the read and the write of
// an update makes it read again and apply itself to the new document.
func TestConcurrentChangeRetried(t *testing.T) {
	st, c := newStore(t)
	ctx := t.Context()
	if _, err := st.Update(ctx, "shop", "prod", func(e *globalstate.Env) error { e.Request(version(1), "", time.Now().UTC()); return nil }); err != nil {
		t.Fatal(err)
	}
	runs := 0
	e, err := st.Update(ctx, "shop", "prod", func(e *globalstate.Env) error {
		runs++
		if runs == 1 { // someone else writes now
			put(t, c, st, `{"app": "shop", "env": "prod", "servers": [{"name": "web9"}]}`)
		}
		e.Servers = append(e.Servers, globalstate.Server{Name: fmt.Sprintf("web%d", runs)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if runs != 2 || len(e.Servers) != 2 || e.Servers[0].Name != "web9" || e.Servers[1].Name != "web2" {
		t.Errorf("runs %d, servers %+v", runs, e.Servers)
	}
	// An error from fn writes nothing.
	stop := errors.New("stop")
	if _, err := st.Update(ctx, "shop", "prod", func(e *globalstate.Env) error { e.Servers = nil; return stop }); !errors.Is(err, stop) {
		t.Errorf("fn's error: %v", err)
	}
	if e, _, _ := st.Get(ctx, "shop", "prod"); len(e.Servers) != 2 {
		t.Errorf("a failed update wrote: %+v", e.Servers)
	}
}

// TestBadDocuments: hand edits that do not parse are reported with the
// document, the position and the fix; nothing is overwritten.
func TestBadDocuments(t *testing.T) {
	st, c := newStore(t)
	for _, tc := range []struct{ body, want string }{
		{"{\n  \"app\": \"shop\",\n  \"env\": \"prod\",\n}\n", "envs/shop/prod.json:4:1"},
		{`{"app": "shop", "env": "prod", "requested": {"version": "v2"}}`, `requested.version "v2"`},
		{`{"app": "shop", "env": "prod", "servers": [{"name": "a"}, {"name": "a"}]}`, "two servers have this name"},
		{`{"app": "shop", "env": "staging"}`, `set "app": "shop", "env": "prod"`},
		{``, "the file is empty"},
	} {
		put(t, c, st, tc.body)
		_, _, err := st.Get(t.Context(), "shop", "prod")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "s3://"+st.Bucket+"/envs/shop/prod.json") {
			t.Errorf("%q: %v; want %q", tc.body, err, tc.want)
		}
		if _, err := st.Update(t.Context(), "shop", "prod", func(*globalstate.Env) error { return nil }); err == nil {
			t.Errorf("%q: an update over it went through", tc.body)
		}
	}
}

// TestEnsureBucket: two clients making the state bucket at once end with
// one bucket, the same for both; later calls find it. (versitygw serves one
// region, us-east-1.)
func TestEnsureBucket(t *testing.T) {
	srv := s3test.Start(t, "127.0.0.1")
	c := srv.Client(t)
	ctx := t.Context()
	if name, err := globalstate.FindBucket(ctx, c, "us-east-1"); err != nil || name != "" {
		t.Fatalf("before: %q %v", name, err)
	}
	var names [2]string
	var wg sync.WaitGroup
	for i := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := globalstate.EnsureBucket(ctx, c, "us-east-1", io.Discard)
			if err != nil {
				t.Error(err)
			}
			names[i] = n
		}()
	}
	wg.Wait()
	if names[0] != names[1] || !strings.HasPrefix(names[0], "jecloud-state-us-east-1-") {
		t.Errorf("the two clients use %q and %q", names[0], names[1])
	}
	out, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, b := range out.Buckets {
		if strings.HasPrefix(aws.ToString(b.Name), globalstate.BucketPrefix) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d state buckets", n)
	}
	if again, _ := globalstate.EnsureBucket(ctx, c, "us-east-1", io.Discard); again != names[0] {
		t.Errorf("a later call: %q", again)
	}
	if other, _ := globalstate.FindBucket(ctx, c, "eu-west-1"); other != "" {
		t.Errorf("another region sees %q", other)
	}
}

// TestExpectedOwner: a bucket that is not the expected owner's is refused.
func TestExpectedOwner(t *testing.T) {
	srv := s3test.Start(t, "127.0.0.1")
	c := srv.Client(t)
	mine := &globalstate.Store{S3: c, Bucket: srv.Bucket, Owner: srv.AccessKey} // versitygw: the owner is the access key
	if _, err := mine.Update(t.Context(), "shop", "prod", func(e *globalstate.Env) error { e.Request(version(1), "", time.Now().UTC()); return nil }); err != nil {
		t.Fatalf("the owner's own bucket: %v", err)
	}
	theirs := &globalstate.Store{S3: c, Bucket: srv.Bucket, Owner: "210987654321"}
	if _, _, err := theirs.Get(t.Context(), "shop", "prod"); err == nil {
		t.Error("a bucket of another owner was read")
	}
	if _, err := theirs.Update(t.Context(), "shop", "prod", func(*globalstate.Env) error { return nil }); err == nil {
		t.Error("a bucket of another owner was written")
	}
}
