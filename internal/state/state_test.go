package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestUnknownKeysSurvive(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a", "prod", "app.json")
	in := `{
  "current_version": "841bc9a0e2f1",
  "owner": "ops team",
  "deployment": {"version": "1fe35a77c0d2", "state": "requested", "ticket": 42},
  "recent_failed_deployments": [{"version": "7c3e92aaaaaa", "reason": "x", "note": [1,2]}],
  "zz": {"nested": true}
}`
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte(in), 0o644)
	_, err := UpdateApp(p, func(a *App) error {
		a.Deployment.State = StateVerifying
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(p)
	for _, want := range []string{`"owner": "ops team"`, `"ticket": 42`, `"note": [`, `"nested": true`, `"state": "verifying"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rewritten file lacks %s:\n%s", want, out)
		}
	}
	var a App
	if err := Read(p, &a); err != nil || a.Deployment.Extra["ticket"] == nil {
		t.Fatalf("reread: %v %+v", err, a.Deployment)
	}
}

// TestKeyCaseIgnored: encoding/json gives a key to a field whatever its
// case, so a hand-typed "Current_Version" is the current version, not a key
// of its own to keep; kept, it would be written after the agent's own
// "current_version" and win over it on the next read.
func TestKeyCaseIgnored(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a", "prod", "app.json")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte(`{"Current_Version": "841bc9a0e2f1", "owner": "ops"}`), 0o644)
	if _, err := UpdateApp(p, func(a *App) error {
		if a.CurrentVersion != "841bc9a0e2f1" {
			t.Errorf("read %q as the current version", a.CurrentVersion)
		}
		a.CurrentVersion = "1fe35a77c0d2"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var a App
	if err := Read(p, &a); err != nil || a.CurrentVersion != "1fe35a77c0d2" || a.Extra["owner"] == nil {
		out, _ := os.ReadFile(p)
		t.Fatalf("reread: %v, current version %q, extra %v:\n%s", err, a.CurrentVersion, a.Extra, out)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"trailing comma", "{\n  \"current_version\": \"841bc9a0e2f1\",\n}", ":3:1:"},
		{"wrong type", "{\n  \"current_version\": 12\n}", ":2:"},
		{"wrong nested type", "{\"deployment\": {\"version\": \"841bc9a0e2f1\", \"tar_bytes\": \"big\"}}", "deployment.tar_bytes"},
		{"empty", "", "empty"},
		{"half saved", "{\"current_version\": \"841b", ":1:"},
		{"bad version", "{\n\"deployment\": {\"version\": \"v1.2\"}}", `:2:27: deployment.version "v1.2"`},
		{"bad state", "{\"deployment\": {\"version\": \"841bc9a0e2f1\", \"state\": \"bogus\"}}", `deployment.state "bogus"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "app.json")
			os.WriteFile(p, []byte(tc.in), 0o644)
			var a App
			err := Read(p, &a)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want ParseError", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("err = %q, want it to name %s and contain %q", err, p, tc.want)
			}
			// UpdateApp must not overwrite it.
			_, err = UpdateApp(p, func(a *App) error { a.CurrentVersion = "000000000000"; return nil })
			if err == nil {
				t.Fatal("UpdateApp wrote over a file that does not parse")
			}
			if got, _ := os.ReadFile(p); string(got) != tc.in {
				t.Errorf("file changed to %q", got)
			}
		})
	}
}

func TestRequestFailSucceed(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var a App
	a.Request("aaaaaaaaaaaa", now, false)
	a.Request("aaaaaaaaaaaa", now, false) // same version: no abort
	a.Request("bbbbbbbbbbbb", now, false)
	if a.Deployment.Version != "bbbbbbbbbbbb" || len(a.AbortedDeploymentVersions) != 1 || a.AbortedDeploymentVersions[0] != "aaaaaaaaaaaa" {
		t.Fatalf("newest must win: %+v", a)
	}
	a.Succeed(now)
	if a.CurrentVersion != "bbbbbbbbbbbb" || a.Deployment != nil {
		t.Fatalf("after succeed: %+v", a)
	}
	for i := 0; i < MaxFailed+5; i++ {
		a.Request("cccccccccccc", now, false)
		a.Fail("boom", now)
	}
	if len(a.RecentFailedDeployments) != MaxFailed || a.CurrentVersion != "bbbbbbbbbbbb" {
		t.Fatalf("failures: %d, current %s", len(a.RecentFailedDeployments), a.CurrentVersion)
	}
	if !a.Failed("cccccccccccc") || a.Failed("bbbbbbbbbbbb") {
		t.Error("Failed() wrong")
	}
	a.Request("dddddddddddd", now, false)
	a.Succeed(now.Add(time.Minute))
	if got := a.LastGood(); got != "bbbbbbbbbbbb" {
		t.Errorf("LastGood = %s", got)
	}
}

func TestUpdateWritesOnlyOnChange(t *testing.T) {
	p := filepath.Join(t.TempDir(), "app.json")
	if _, err := UpdateApp(p, func(a *App) error { a.CurrentVersion = "841bc9a0e2f1"; return nil }); err != nil {
		t.Fatal(err)
	}
	fi1, _ := os.Stat(p)
	time.Sleep(10 * time.Millisecond)
	if _, err := UpdateApp(p, func(a *App) error { return nil }); err != nil {
		t.Fatal(err)
	}
	fi2, _ := os.Stat(p)
	if !fi1.ModTime().Equal(fi2.ModTime()) {
		t.Error("an unchanged update rewrote the file")
	}
}

func TestAppEnvs(t *testing.T) {
	l := Layout{Root: t.TempDir()}
	for _, ae := range []AppEnv{{"web", "prod"}, {"web", "stage"}, {"api", "prod"}} {
		if err := Write(l.AppJSON(ae), &App{}); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(l.Root, "sys"), 0o755)
	os.MkdirAll(filepath.Join(l.Root, "Bad Name", "prod"), 0o755)
	os.WriteFile(filepath.Join(l.Root, "Bad Name", "prod", "app.json"), []byte("{}"), 0o644)
	got, err := l.AppEnvs()
	if err != nil || len(got) != 3 || got[0].String() != "api/prod" {
		t.Fatalf("AppEnvs = %v, %v", got, err)
	}
}

// TestAppDirModes: an app environment's directories are 0750 from the
// moment they are made (issue #17: before, APP/ENV was world-readable
// until a hook's appuser.Ensure), and APP stays passable (0755).
func TestAppDirModes(t *testing.T) {
	l := Layout{Root: t.TempDir()}
	ae := AppEnv{App: "shop", Env: "prod"}
	if _, err := UpdateApp(l.AppJSON(ae), func(a *App) error { a.CurrentVersion = "841bc9a0e2f1"; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := l.MkdirVersions(AppEnv{App: "shop", Env: "staging"}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{
		"shop": 0o755, "shop/prod": 0o750, "shop/staging": 0o750, "shop/staging/source": 0o750, "shop/staging/source/versions": 0o750,
	} {
		fi, err := os.Stat(filepath.Join(l.Root, p))
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v; want %v", p, fi.Mode(), err, want)
		}
	}
}
