package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/state"
)

// TestDestroyCommand: jeagent destroy on a server without systemd (the
// roll-forward runs as a process of its own): the app environment it
// names goes, with its releases and config vars, its data stays unless
// --data; the other environment is left alone; a destroyed one is "not on
// this server" (exit 3); while it is being destroyed it is not live and
// deploys to it are refused.
func TestDestroyCommand(t *testing.T) {
	root := t.TempDir()
	l := state.Layout{Root: root}
	run(t, root, nil, nil, "init", "--no-systemd")
	shop, blog := state.AppEnv{App: "shop", Env: "prod"}, state.AppEnv{App: "blog", Env: "prod"}
	for _, ae := range []state.AppEnv{shop, blog} {
		id, data := makeBundle(t, map[string]string{"Procfile": "web: true\n"})
		if r := run(t, root, nil, data, "receive", ae.App, ae.Env, id); r.code != 0 {
			t.Fatalf("receive: %+v", r)
		}
		if r := run(t, root, nil, nil, "deploy", ae.App, ae.Env, id, "--wait"); r.code != 0 {
			t.Fatalf("deploy: %+v", r)
		}
	}
	run(t, root, nil, nil, "config:set", "shop", "prod", "A=1", "--no-restart")
	dataFile := filepath.Join(l.AppDir(shop), "data", "upload")
	os.MkdirAll(filepath.Dir(dataFile), 0o750)
	os.WriteFile(dataFile, []byte("x"), 0o600)

	// Half way (as a crash leaves it): not live, and no deploy to it.
	if _, err := state.UpdateApp(l.AppJSON(shop), func(a *state.App) error {
		a.Destroy = &state.Destroy{RequestDate: state.Now()}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st := run(t, root, nil, nil, "status", "shop", "prod")
	if !strings.Contains(st.stdout, "destroying: since") || strings.Contains(st.stdout, "live:") {
		t.Errorf("status of an environment being destroyed:\n%s", st.stdout)
	}
	if js := run(t, root, nil, nil, "status", "shop", "prod", "--json"); !strings.Contains(js.stdout, `"current_version": ""`) || !strings.Contains(js.stdout, `"destroying"`) {
		t.Errorf("status --json of an environment being destroyed:\n%s", js.stdout)
	}
	id, data := makeBundle(t, map[string]string{"Procfile": "web: true\n", "v": "2"})
	run(t, root, nil, data, "receive", "shop", "prod", id)
	if r := run(t, root, nil, nil, "deploy", "shop", "prod", id); r.code == 0 || !strings.Contains(r.stderr, "is being destroyed") {
		t.Errorf("deploy while being destroyed: %+v", r)
	}

	// jeagent destroy finishes it.
	r := run(t, root, nil, nil, "destroy", "shop", "prod")
	if r.code != 0 || !strings.Contains(r.stdout, "shop/prod: destroyed") {
		t.Fatalf("destroy: %+v", r)
	}
	idle(t, root)
	for _, gone := range []string{"app.json", "source", "config.env"} {
		if _, err := os.Lstat(filepath.Join(l.AppDir(shop), gone)); err == nil {
			t.Errorf("%s is left", gone)
		}
	}
	if _, err := os.Stat(dataFile); err != nil {
		t.Errorf("the data went without --data: %v", err)
	}
	if _, err := os.Stat(l.AppJSON(blog)); err != nil {
		t.Errorf("blog/prod went too: %v", err)
	}
	if r := run(t, root, nil, nil, "destroy", "shop", "prod", "--data"); r.code != 3 || !strings.Contains(r.stderr, "nothing to destroy") {
		t.Errorf("destroy of a destroyed environment: %+v", r)
	}
	// blog, with --data: its directory goes.
	if r := run(t, root, nil, nil, "destroy", "blog", "prod", "--data"); r.code != 0 {
		t.Fatalf("destroy --data: %+v", r)
	}
	idle(t, root)
	if _, err := os.Stat(l.AppDir(blog)); err == nil {
		t.Errorf("%s is left after destroy --data", l.AppDir(blog))
	}
	if r := run(t, root, nil, nil, "destroy", "Shop", "prod"); r.code == 0 {
		t.Errorf("destroy of an invalid name: %+v", r)
	}
}
