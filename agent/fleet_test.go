package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jecloud/jecloud/internal/backup/s3test"
	"github.com/jecloud/jecloud/internal/fleet"
	"github.com/jecloud/jecloud/internal/globalstate"
)

// TestFollowGlobalState: three servers (three roots) follow one
// environment's document on a real S3 server. A requested version is
// downloaded, verified and deployed by a server only when a rollout slot
// is free (max_parallel 1); each writes what it runs back; a failure is
// reported with its reason; a slot held by a server that died frees itself.
func TestFollowGlobalState(t *testing.T) {
	srv := s3test.Start(t, "127.0.0.1")
	c := srv.Client(t)
	st := &globalstate.Store{S3: c, Bucket: srv.Bucket}
	ctx := t.Context()
	names := []string{"web-1", "web-2", "web-3"}
	roots := map[string]string{}
	for _, n := range names {
		root := t.TempDir()
		run(t, root, nil, nil, "init")
		conf := fmt.Sprintf(`{"global": {"bucket": %q, "endpoint": %q, "server": %q, "envs": ["web/prod"]}}`, srv.Bucket, srv.Endpoint, n)
		os.WriteFile(filepath.Join(root, "sys", "server.json"), []byte(conf), 0o640)
		os.WriteFile(fleet.CredentialsFile(root), []byte(srv.Env()), 0o600)
		userHook(t, root, `if [ "$1" = prepare ] && [ -f "$JECLOUD_RELEASE_DIR/broken" ]; then echo "broken on purpose" >&2; exit 1; fi`)
		roots[n] = root
	}
	upload := func(files map[string]string) string {
		id, data := makeBundle(t, files)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &srv.Bucket, Key: aws.String(fleet.BundleKey("web", id)), Body: bytes.NewReader(data)}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	update := func(fn func(*globalstate.Env)) {
		t.Helper()
		if _, err := st.Update(ctx, "web", "prod", func(e *globalstate.Env) error { fn(e); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	// doc is the document with each server's own observation object read
	// in (servers report there, not into the document).
	doc := func() *globalstate.Env {
		e, _, err := st.Get(ctx, "web", "prod")
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Observe(ctx, e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	tick := func(n string) result {
		t.Helper()
		r := run(t, roots[n], nil, nil, "rollforward")
		if r.code != 0 {
			t.Fatalf("rollforward on %s: %+v", n, r)
		}
		return r
	}
	v1 := upload(map[string]string{"index.js": "1"})
	update(func(e *globalstate.Env) {
		for _, n := range names {
			e.Servers = append(e.Servers, globalstate.Server{Name: n, Host: n})
		}
		e.Request(v1, "test", time.Now().UTC())
	})

	// web-2 holds the only slot: web-1 waits.
	update(func(e *globalstate.Env) {
		e.Server("web-2").Observed = &globalstate.Observed{Deploying: v1, Date: time.Now().UTC()}
	})
	if r := tick("web-1"); !strings.Contains(r.stderr, "waiting for a rollout slot") {
		t.Errorf("web-1 while web-2 deploys: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(roots["web-1"], "web", "prod", "app.json")); err == nil {
		if a := readApp(t, roots["web-1"]); a.Deployment != nil || a.CurrentVersion != "" {
			t.Errorf("web-1 deployed without a slot: %+v", a)
		}
	}
	// A claim nobody reported on for an hour is stale: web-1 goes ahead.
	update(func(e *globalstate.Env) { e.Server("web-2").Observed.Date = time.Now().Add(-time.Hour).UTC() })
	tick("web-1")
	if a := readApp(t, roots["web-1"]); a.CurrentVersion != v1 || a.Deployment != nil {
		t.Fatalf("web-1 after its run: %+v", a)
	}
	if o := doc().Server("web-1").Observed; o == nil || o.CurrentVersion != v1 || o.Deploying != "" {
		t.Errorf("web-1 observed: %+v", o)
	}
	update(func(e *globalstate.Env) { e.Server("web-2").Observed = nil })
	tick("web-2")
	tick("web-3")
	for _, n := range names {
		if o := doc().Server(n).Observed; o == nil || o.CurrentVersion != v1 {
			t.Errorf("%s observed: %+v", n, o)
		}
	}
	// An idle tick writes nothing.
	before := doc()
	tick("web-3")
	if after := doc(); after.Server("web-3").Observed.Date != before.Server("web-3").Observed.Date {
		t.Error("an idle tick rewrote the document")
	}

	// A broken version: the first server to take it fails, rolls back, says why.
	v2 := upload(map[string]string{"index.js": "2", "broken": "yes"})
	update(func(e *globalstate.Env) { e.Request(v2, "test", time.Now().UTC()) })
	tick("web-1")
	o := doc().Server("web-1").Observed
	if a := readApp(t, roots["web-1"]); a.CurrentVersion != v1 || o.CurrentVersion != v1 || o.Deploying != "" || !strings.Contains(o.Error, "broken on purpose") {
		t.Errorf("web-1 after a broken version: app %s, observed %+v", a.CurrentVersion, o)
	}
	// It does not try it again on the next tick.
	if r := tick("web-1"); strings.Contains(r.stderr, "deploying "+v2) {
		t.Errorf("web-1 retried the failed version: %s", r.stderr)
	}

	// A missing bundle gives the slot back with the reason.
	update(func(e *globalstate.Env) { e.Request("0123456789ab", "test", time.Now().UTC()) })
	tick("web-2")
	if o := doc().Server("web-2").Observed; o.Deploying != "" || !strings.Contains(o.Error, "downloading s3://") {
		t.Errorf("web-2 with no bundle in S3: %+v", o)
	}

	// jeagent sync without a global state says what to add.
	other := t.TempDir()
	run(t, other, nil, nil, "init")
	if r := run(t, other, nil, nil, "sync"); r.code == 0 || !strings.Contains(r.stderr, `add "global"`) {
		t.Errorf("sync without a global state: %+v", r)
	}
}
