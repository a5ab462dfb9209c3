package node

import (
	"context"
	"io"
	"path"
	"testing"

	"github.com/jecloud/jecloud/internal/appspec"
)

// fakeUnits is a systemd that knows some units and records what is stopped.
type fakeUnits struct {
	loaded  []string
	stopped []string
}

func (f *fakeUnits) Enable(context.Context, []string) error  { return nil }
func (f *fakeUnits) Disable(context.Context, []string) error { return nil }
func (f *fakeUnits) Start(context.Context, string) error     { return nil }
func (f *fakeUnits) Restart(context.Context, string) error   { return nil }
func (f *fakeUnits) Stop(_ context.Context, name string) error {
	f.stopped = append(f.stopped, name)
	return nil
}
func (f *fakeUnits) State(context.Context, string) (string, uint32, error) { return "active", 0, nil }
func (f *fakeUnits) Units(_ context.Context, patterns []string) ([]string, error) {
	var out []string
	for _, u := range f.loaded {
		for _, p := range patterns {
			if ok, _ := path.Match(p, u); ok {
				out = append(out, u)
				break
			}
		}
	}
	return out, nil
}

// TestDeployLeavesOtherAppEnvsUnits is the attack of issue #17: deploying
// shop/prod must not stop the units of shop/prod-eu (nor shop-prod/eu's).
func TestDeployLeavesOtherAppEnvsUnits(t *testing.T) {
	other := []appUnits{{App: "shop", Env: "prod-eu"}, {App: "shop-prod", Env: "eu"}, {App: "shop", Env: "prod-web"}}
	sd := &fakeUnits{}
	for _, o := range other {
		sd.loaded = append(sd.loaded, instance(o.serviceName("web"), 1), instance(o.serviceName("web"), 2), instance(o.serviceName("worker"), 1))
	}
	u := appUnits{App: "shop", Env: "prod"}
	spec := &appspec.Spec{Processes: map[string]string{"web": "node server.js"}}
	if err := scaleDown(context.Background(), sd, u, "web", 1, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := scaleDown(context.Background(), sd, u, "worker", 0, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := (&Hook{}).stopRemovedTypes(context.Background(), sd, u, spec, io.Discard); err != nil {
		t.Fatal(err)
	}
	if len(sd.stopped) > 0 {
		t.Fatalf("deploying shop/prod stopped other app environments' units: %v", sd.stopped)
	}
}
