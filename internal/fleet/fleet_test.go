package fleet

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/backup/s3test"
	"github.com/jecloud/jecloud/internal/globalstate"
	"github.com/jecloud/jecloud/internal/placement"
	"github.com/jecloud/jecloud/internal/state"
)

// allHere is versions that has every version.
type allHere struct{}

func (allHere) Has(state.AppEnv, string) bool                          { return true }
func (allHere) Receive(state.AppEnv, string, io.Reader) (int64, error) { return 0, nil }

// TestSyncPlacement: a following server takes its role and the roles with
// ready servers from the document, and restarts its live version when that
// changes (the process types placed on it start, the others stop); an
// unchanged placement writes nothing.
func TestSyncPlacement(t *testing.T) {
	s3 := s3test.Start(t, "127.0.0.1")
	ctx := t.Context()
	st := &globalstate.Store{S3: s3.Client(t), Bucket: s3.Bucket}
	const v1 = "0123456789ab"
	ae := state.AppEnv{App: "shop", Env: "prod"}
	if _, err := st.Update(ctx, ae.App, ae.Env, func(e *globalstate.Env) error {
		e.Servers = []globalstate.Server{{Name: "shop-prod-1", Host: "10.0.0.1", Role: "web"}}
		e.Request(v1, "test", time.Now().UTC())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	l := state.Layout{Root: root}
	os.MkdirAll(filepath.Dir(l.ServerJSON()), 0o755)
	if err := os.WriteFile(CredentialsFile(root), []byte(s3.Env()), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Follow(root, Settings{Bucket: s3.Bucket, Region: "us-east-1", Endpoint: s3.Endpoint, Server: "shop-prod-1"}, "shop/prod"); err != nil {
		t.Fatal(err)
	}
	if _, err := state.UpdateApp(l.AppJSON(ae), func(a *state.App) error { a.CurrentVersion = v1; return nil }); err != nil {
		t.Fatal(err)
	}
	sync := func() *state.App {
		t.Helper()
		fo, err := Open(ctx, root, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if err := fo.Sync(ctx, allHere{}); err != nil {
			t.Fatal(err)
		}
		var a state.App
		if err := state.Read(l.AppJSON(ae), &a); err != nil {
			t.Fatal(err)
		}
		return &a
	}
	// Web servers only: the same as no placement, nothing to restart.
	if a := sync(); a.Deployment != nil || !placement.Same(a.Placement, nil) {
		t.Fatalf("web servers only: placement %+v, deployment %+v", a.Placement, a.Deployment)
	}
	// A worker server is ready: the web server restarts without the worker types.
	if _, err := st.Update(ctx, ae.App, ae.Env, func(e *globalstate.Env) error {
		e.Servers = append(e.Servers, globalstate.Server{Name: "shop-prod-worker-1", Host: "10.0.0.2", Role: "worker"},
			globalstate.Server{Name: "shop-prod-batch-1", Role: "batch", Bootstrap: &globalstate.Bootstrap{Step: "booting"}})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	a := sync()
	if a.Placement == nil || a.Placement.Role != "web" || len(a.Placement.Roles) != 2 || a.Placement.Roles[1] != "worker" {
		t.Errorf("placement %+v, want web with roles web, worker (batch is not ready)", a.Placement)
	}
	if a.Deployment == nil || a.Deployment.Version != v1 {
		t.Errorf("deployment %+v, want a restart of %s", a.Deployment, v1)
	}
	// Once it ran, the same placement asks for nothing.
	state.UpdateApp(l.AppJSON(ae), func(a *state.App) error { a.Deployment = nil; return nil })
	if a := sync(); a.Deployment != nil {
		t.Errorf("unchanged placement: deployment %+v", a.Deployment)
	}
	// `scale --role worker 0`: the worker server is still there, being
	// ended, but the role counts as gone: the web server takes the workers.
	st.Update(ctx, ae.App, ae.Env, func(e *globalstate.Env) error { e.DesiredRoles = map[string]int{"worker": 0}; return nil })
	if a := sync(); a.Deployment == nil || a.Placement == nil || len(a.Placement.Roles) != 1 {
		t.Errorf("worker scaled to 0: placement %+v, deployment %+v", a.Placement, a.Deployment)
	}
}
