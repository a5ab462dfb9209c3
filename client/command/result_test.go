package command

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/remote/sshdtest"
)

// TestJSONResults: push, rollback and config with --json print exactly
// one JSON object on stdout (the progress goes to stderr), on success and
// on failure, with each server's outcome.
func TestJSONResults(t *testing.T) {
	type host struct {
		Host    string            `json:"host"`
		Version string            `json:"version"`
		Live    string            `json:"live"`
		State   string            `json:"state"`
		Reason  string            `json:"reason"`
		Vars    map[string]string `json:"vars"`
	}
	type doc struct {
		App   string `json:"app"`
		Env   string `json:"env"`
		OK    *bool  `json:"ok"`
		Error string `json:"error"`
		Hosts []host `json:"hosts"`
	}
	ctx := context.Background()
	dir, root := app(t), t.TempDir()
	local := []string{"--dir", dir, "--local", "--root", root, "--agent", fakeAgent}
	var first string // the version of the first push
	for _, tc := range []struct {
		name     string
		setup    func()
		args     []string
		code     int
		ok       bool
		state    string
		stderr   string // in the progress
		check    func(t *testing.T, d doc)
		noResult bool // config: no "ok"
	}{
		{name: "push", args: []string{"push", dir, "dev"}, ok: true, state: "live", stderr: "local: extracting",
			check: func(t *testing.T, d doc) {
				first = d.Hosts[0].Version
				if len(first) != 12 || d.Hosts[0].Live != first {
					t.Errorf("version %q, live %q", first, d.Hosts[0].Live)
				}
			}},
		{name: "push that fails", code: ExitFailed, state: "failed", stderr: "hook node: npm ci",
			setup: func() {
				sshdtest.WriteFile(t, filepath.Join(root, "fail"), "port 3000 already in use", 0o644)
				sshdtest.WriteFile(t, filepath.Join(dir, "index.js"), "2\n", 0o644)
			},
			args: []string{"push", dir, "dev"},
			check: func(t *testing.T, d doc) {
				h := d.Hosts[0]
				if !strings.Contains(d.Error, "port 3000 already in use") || h.Live != first || h.Reason != "port 3000 already in use" || h.Version == first {
					t.Errorf("error %q, result %+v (want %s still live)", d.Error, h, first)
				}
			}},
		{name: "rollback", setup: func() {
			sshdtest.WriteFile(t, filepath.Join(root, "shop", "dev", "previous"), "aaaaaaaaaaaa\n", 0o644)
			os.Remove(filepath.Join(root, "fail"))
		}, args: []string{"rollback", "dev"}, ok: true, state: "live",
			check: func(t *testing.T, d doc) {
				if d.Hosts[0].Version != "" || d.Hosts[0].Live != "aaaaaaaaaaaa" {
					t.Errorf("rollback result %+v", d.Hosts[0])
				}
			}},
		{name: "config", setup: func() {
			sshdtest.WriteFile(t, filepath.Join(root, "shop", "dev", "config.json"), `{"GREETING": "hello world"}`, 0o644)
		}, args: []string{"config", "dev"}, noResult: true,
			check: func(t *testing.T, d doc) {
				if d.Hosts[0].Vars["GREETING"] != "hello world" {
					t.Errorf("config vars %v", d.Hosts[0].Vars)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			args := append(append(tc.args, "--json"), local...)
			if tc.args[0] == "push" {
				args = append(append(tc.args, "--json"), local[2:]...) // push takes DIR, not --dir
			}
			code, out, errb := jepush(ctx, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errb)
			}
			var d doc
			if err := json.Unmarshal([]byte(out), &d); err != nil {
				t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
			}
			if d.App != "shop" || d.Env != "dev" || len(d.Hosts) != 1 || d.Hosts[0].Host != "local" {
				t.Fatalf("result %+v", d)
			}
			if tc.noResult {
				if d.OK != nil {
					t.Errorf("config --json has an \"ok\": %s", out)
				}
			} else {
				if d.OK == nil || *d.OK != tc.ok || d.Hosts[0].State != tc.state {
					t.Errorf("ok %v state %q, want %v %q\n%s", d.OK, d.Hosts[0].State, tc.ok, tc.state, out)
				}
			}
			if tc.stderr != "" && !strings.Contains(errb, tc.stderr) {
				t.Errorf("stderr lacks the progress %q:\n%s", tc.stderr, errb)
			}
			tc.check(t, d)
		})
	}
}
