package tick

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/state"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// settled makes an app environment whose version v1 is live.
func settled(t *testing.T, l state.Layout, ae state.AppEnv) {
	write(t, filepath.Join(l.Release(ae, "aaaaaaaaaaaa"), "index.html"), "hi\n")
	if err := os.Symlink("aaaaaaaaaaaa", l.Current(ae)); err != nil {
		t.Fatal(err)
	}
	write(t, l.AppJSON(ae), `{"current_version": "aaaaaaaaaaaa"}`)
}

func TestIdle(t *testing.T) {
	shop := state.AppEnv{App: "shop", Env: "prod"}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, l state.Layout)
		idle  bool
	}{
		{"empty root", func(*testing.T, state.Layout) {}, true},
		{"settled app environment", func(t *testing.T, l state.Layout) { settled(t, l, shop) }, true},
		{"deployment requested", func(t *testing.T, l state.Layout) {
			settled(t, l, shop)
			write(t, l.AppJSON(shop), `{"current_version": "aaaaaaaaaaaa", "deployment": {"version": "bbbbbbbbbbbb"}}`)
		}, false},
		{"app.json that does not parse", func(t *testing.T, l state.Layout) {
			settled(t, l, shop)
			write(t, l.AppJSON(shop), `{"current_version": `)
		}, false},
		{"server follows a global state", func(t *testing.T, l state.Layout) {
			settled(t, l, shop)
			write(t, l.ServerJSON(), `{"global": {"bucket": "b"}}`)
		}, false},
		{"server.json that does not parse", func(t *testing.T, l state.Layout) {
			settled(t, l, shop)
			write(t, l.ServerJSON(), `{`)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := state.Layout{Root: t.TempDir()}
			tc.setup(t, l)
			if got := Idle(l); got != tc.idle {
				t.Errorf("Idle = %v, want %v", got, tc.idle)
			}
		})
	}
}

// TestTickRunsAgent runs the built jeagent-tick: idle, it ends without running the
// agent; with work, it becomes the agent (same arguments as the unit's
// `jeagent rollforward`).
func TestTickRunsAgent(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "jeagent-tick")
	if out, err := exec.Command("go", "build", "-o", bin, "../../agent/tick").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	agent := filepath.Join(dir, "jeagent")
	calls := filepath.Join(dir, "calls")
	write(t, agent, "#!/bin/sh\necho \"$@\" >> "+calls+"\n")
	os.Chmod(agent, 0o755)
	l := state.Layout{Root: t.TempDir()}
	shop := state.AppEnv{App: "shop", Env: "prod"}
	settled(t, l, shop)

	run := func(args ...string) string {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("jeagent-tick %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("--root", l.Root) // the agent beside it
	if _, err := os.Stat(calls); err == nil {
		t.Fatal("an idle tick ran the agent")
	}
	write(t, l.AppJSON(shop), `{"current_version": "aaaaaaaaaaaa", "deployment": {"version": "bbbbbbbbbbbb"}}`)
	run("--root", l.Root)
	if b, _ := os.ReadFile(calls); string(b) != "--root "+l.Root+" rollforward\n" {
		t.Fatalf("agent called with %q", b)
	}
	// --agent names it; JECLOUD_ROOT gives the root.
	other := filepath.Join(t.TempDir(), "agent")
	write(t, other, "#!/bin/sh\necho other \"$@\" >> "+calls+"\n")
	os.Chmod(other, 0o755)
	cmd := exec.Command(bin, "--agent", other)
	cmd.Env = append(os.Environ(), "JECLOUD_ROOT="+l.Root)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if b, _ := os.ReadFile(calls); !strings.HasSuffix(string(b), "other --root "+l.Root+" rollforward\n") {
		t.Fatalf("agent called with %q", b)
	}
	if out := run("--help"); !strings.Contains(out, "Usage: jeagent-tick") {
		t.Errorf("--help:\n%s", out)
	}
	if out, err := exec.Command(bin, "extra").CombinedOutput(); err == nil || !strings.Contains(string(out), "takes no arguments") {
		t.Errorf("an argument: %v\n%s", err, out)
	}
}
