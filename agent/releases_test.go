package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestReleases: two good versions and a failed one, each with who asked
// for it; newest first, the live one marked; rollback without an ID goes
// to the newest good one before the live one, and with none points to
// releases.
func TestReleases(t *testing.T) {
	root := t.TempDir()
	run(t, root, nil, nil, "init")
	userHook(t, root, `[ "$1" = prepare ] && grep -q broken "$JECLOUD_RELEASE_DIR/server.js" && { echo "npm ci: broken" >&2; exit 1; }; exit 0`)
	deploy := func(body, by string) string {
		time.Sleep(1100 * time.Millisecond) // app.json's dates are whole seconds
		id, data := makeBundle(t, map[string]string{"server.js": body})
		run(t, root, nil, data, "receive", "web", "prod", id)
		run(t, root, nil, nil, "deploy", "web", "prod", id, "--wait", "--by", by)
		return id
	}
	v1 := deploy("one", "alice@laptop")
	if r := run(t, root, nil, nil, "rollback", "web", "prod"); r.code == 0 || !strings.Contains(r.stderr, "jepush releases prod") {
		t.Errorf("rollback with no earlier release: %+v", r)
	}
	v2 := deploy("two", "bob@ci-runner")
	bad := deploy("broken", "carol@laptop")
	if r := run(t, root, nil, nil, "deploy", "web", "prod", v2, "--by", "x\x1b[2Jy"); r.code == 0 || !strings.Contains(r.stderr, "control characters are refused") {
		t.Errorf("--by with an escape sequence: %+v", r)
	}

	r := run(t, root, nil, nil, "releases", "web", "prod", "--json")
	var out struct {
		Releases []struct {
			Version, By, Result, Reason string
			OnServer                    bool `json:"on_server"`
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("releases --json: %v\n%+v", err, r)
	}
	want := []struct{ version, by, result string }{{bad, "carol@laptop", "failed"}, {v2, "bob@ci-runner", "live"}, {v1, "alice@laptop", "deployed"}}
	if len(out.Releases) != len(want) {
		t.Fatalf("releases: %+v", out.Releases)
	}
	for i, w := range want {
		g := out.Releases[i]
		if g.Version != w.version || g.By != w.by || g.Result != w.result || !g.OnServer {
			t.Errorf("release %d: %+v, want %v", i, g, w)
		}
	}
	if !strings.Contains(out.Releases[0].Reason, "npm ci: broken") {
		t.Errorf("the failure's reason: %q", out.Releases[0].Reason)
	}
	r = run(t, root, nil, nil, "releases", "web", "prod")
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[2], v2) || !strings.Contains(lines[2], "live") {
		t.Errorf("releases:\n%s", r.stdout)
	}
	if r := run(t, root, nil, nil, "rollback", "web", "prod", "--wait", "--by", "dave@laptop"); r.code != 0 || !strings.Contains(r.stdout, v1+" is unpacked; no process types") {
		t.Errorf("rollback: %+v", r)
	}
	// A restart is a deployment of the live version, with its deployed hooks.
	time.Sleep(1100 * time.Millisecond)
	r = run(t, root, nil, nil, "restart", "web", "prod", "--wait", "--by", "erin@laptop")
	if r.code != 0 || !strings.Contains(r.stdout, "restarting "+v1) || !strings.Contains(r.stdout, v1+" is unpacked; no process types") {
		t.Errorf("restart: %+v", r)
	}
	r = run(t, root, nil, nil, "releases", "web", "prod", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Releases[0].Version != v1 || out.Releases[0].By != "erin@laptop" || out.Releases[0].Result != "live" {
		t.Errorf("releases after the restart: %v %+v", err, out.Releases)
	}
	// restart TYPE: a type of the live release only (this one has none).
	for _, typ := range []string{"worker", "Web@1"} {
		if r := run(t, root, nil, nil, "restart", "web", "prod", typ); r.code != 3 || !strings.Contains(r.stderr, "process type") {
			t.Errorf("restart %s: %+v", typ, r)
		}
	}
	if r := run(t, root, nil, nil, "restart", "web", "staging"); r.code != 3 || !strings.Contains(r.stderr, "never been deployed here") {
		t.Errorf("restart of an environment never deployed: %+v", r)
	}
}
