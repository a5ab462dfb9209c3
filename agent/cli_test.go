package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/state"
	"github.com/jecloud/jecloud/internal/version"
)

// TestStatusExit: jeagent status exits non-zero when the root is missing
// (1), when the app environment asked for is not there (3, what there is
// printed all the same) and when an app.json does not parse (1).
func TestStatusExit(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nothing")
	if r := run(t, missing, nil, nil, "status"); r.code != 1 || !strings.Contains(r.stderr, "no state tree at "+missing) || !strings.Contains(r.stderr, "jeagent init") {
		t.Errorf("status, root missing: %+v", r)
	}
	root := t.TempDir()
	if r := run(t, root, nil, nil, "status"); r.code != 0 || !strings.Contains(r.stdout, "no app environments") {
		t.Errorf("status, empty root: %+v", r)
	}
	for _, args := range [][]string{{"status", "shop"}, {"status", "shop", "prod"}, {"status", "shop", "prod", "--json"}} {
		r := run(t, root, nil, nil, args...)
		if r.code != 3 || !strings.Contains(r.stderr, "no app environment shop") {
			t.Errorf("jeagent %q: %+v, want exit 3", args, r)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "shop", "prod"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "shop", "prod", "app.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"status"}, {"status", "shop", "prod", "--json"}} {
		r := run(t, root, nil, nil, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "1 app.json file(s)") || !strings.Contains(r.stdout, "app.json") {
			t.Errorf("jeagent %q with a broken app.json: %+v, want exit 1", args, r)
		}
	}
	if r := run(t, root, nil, nil, "status", "--help"); strings.Contains(r.stdout, "with --wait") {
		t.Errorf("status --help names a --wait it does not have:\n%s", r.stdout)
	}
}

// TestVersion: --version, --version --json, and the protocol line of has
// that jepush reads.
func TestVersion(t *testing.T) {
	root := t.TempDir()
	r := run(t, root, nil, nil, "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "jeagent ") || !strings.Contains(r.stdout, "protocol 1") {
		t.Errorf("--version: %+v", r)
	}
	r = run(t, root, nil, nil, "--version", "--json")
	var i version.Info
	if err := json.Unmarshal([]byte(r.stdout), &i); err != nil || r.code != 0 || i.Program != "jeagent" || i.Protocol != version.Protocol || i.Version == "" {
		t.Errorf("--version --json: %+v (%v)", r, err)
	}
	r = run(t, root, nil, nil, "has", "web", "prod", "841bc9a0e2f1")
	if r.code != 3 || version.ParseProtocol(r.stdout) != version.Protocol {
		t.Errorf("has: %+v, want exit 3 and the protocol line", r)
	}
}

// TestUsage: a mistyped command gets "did you mean", a flag without its
// value is named.
func TestUsage(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"stauts"}, `no command "stauts": did you mean "status"?`},
		{[]string{"--root", root, "rollfoward"}, `did you mean "rollforward"?`},
		{[]string{"deploy", "web", "prod", "841bc9a0e2f1", "--timeout"}, "--timeout needs a value"},
		{[]string{"deploy", "web", "prod", "841bc9a0e2f1", "--role", "--wait"}, "--role needs a value"},
	} {
		r := run(t, root, nil, nil, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("jeagent %q: %+v, want exit 2 and %q", tc.args, r, tc.want)
		}
	}
}

// TestReleaseChecked: the agent refuses what jepush check refuses, with the
// same message (both read the release through internal/appspec), before
// its install hooks: the mistake is not blamed on the packages hook.
func TestReleaseChecked(t *testing.T) {
	root := t.TempDir()
	run(t, root, nil, nil, "init", "--no-systemd")
	id, data := makeBundle(t, map[string]string{"server.js": "hello", "jecloud.toml": "[web]\nhelth = \"/healthz\"\n"})
	run(t, root, nil, data, "receive", "web", "prod", id)
	r := run(t, root, nil, nil, "deploy", "--wait", "web", "prod", id)
	want := `jecloud.toml:2: unknown key "helth" in [web]: did you mean "health"? (the keys in [web] are health, socket, static)`
	if r.code == 0 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "the release does not pass jepush check") || strings.Contains(r.stderr, "hook packages") {
		t.Fatalf("deploy of a release with a misspelt key: %+v\nwant %q", r, want)
	}
	t.Logf("deploy --wait: %s", lastLine(r.stderr))

	// The same release, live here before this agent (an older one took the
	// key): a restart is not refused for it.
	appJSON := filepath.Join(root, "web", "prod", "app.json")
	if _, err := state.UpdateApp(appJSON, func(a *state.App) error {
		a.CurrentVersion = id
		a.DeployedVersions = append(a.DeployedVersions, state.Deployed{Version: id, Date: state.Now()})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if r := run(t, root, nil, nil, "restart", "web", "prod", "--wait"); r.code != 0 {
		t.Errorf("restart of a release that was live, with a key this agent does not know: %+v", r)
	}
}
