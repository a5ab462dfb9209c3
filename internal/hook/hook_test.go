package hook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExec(t *testing.T) {
	dir := t.TempDir()
	req := Request{Phase: Prepare, App: "web", Env: "prod", Version: "841bc9a0e2f1", ReleaseDir: dir, Root: "/r"}
	for _, tc := range []struct {
		name, body string
		timeout    time.Duration
		wantErr    string
		wantVar    string
		wantLog    string
	}{
		{name: "ok", body: `echo "phase $1 $JECLOUD_APP" >&2; read line; echo '{"vars":{"REDIS_URL":"redis://x"}}'`, wantVar: "redis://x", wantLog: "ok: phase prepare web"},
		{name: "stdin", body: `grep -q '"release_dir"' && echo '{"vars":{"REDIS_URL":"seen"}}'`, wantVar: "seen"},
		{name: "ignores", body: `exit 0`},
		{name: "message", body: `echo '{"message":"npm ci failed: lockfile out of date"}'; exit 1`, wantErr: "prepare hook message failed: npm ci failed: lockfile out of date"},
		{name: "stderr", body: "echo progress >&2; echo 'no space left' >&2; exit 3", wantErr: "failed: no space left"},
		{name: "silent", body: "exit 4", wantErr: "exit status 4"},
		{name: "garbage", body: "echo hello", wantErr: "not one JSON object"},
		{name: "slow", body: "sleep 10", timeout: 200 * time.Millisecond, wantErr: "timed out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := Exec{Path: script(t, dir, tc.name, tc.body), Timeout: tc.timeout}
			var log bytes.Buffer
			resp, err := h.Run(context.Background(), req, &log)
			if tc.wantErr != "" {
				var he *Error
				if !errors.As(err, &he) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Vars["REDIS_URL"] != tc.wantVar {
				t.Errorf("vars = %v", resp.Vars)
			}
			if !strings.Contains(log.String(), tc.wantLog) {
				t.Errorf("log = %q, want %q", log.String(), tc.wantLog)
			}
		})
	}
}

func TestDirAndRunPhase(t *testing.T) {
	dir := t.TempDir()
	script(t, dir, "20-second", `cat > /dev/null; echo "{\"vars\":{\"B\":\"$JECLOUD_VERSION\"}}"`)
	script(t, dir, "10-first", `cat > /dev/null; echo '{"vars":{"A":"1"}}'`)
	os.WriteFile(filepath.Join(dir, "30-not-executable"), []byte("#!/bin/sh\nexit 1"), 0o644)
	script(t, dir, "40-backup~", "exit 1")
	script(t, dir, ".hidden", "exit 1")
	hooks, err := Dir(dir, time.Minute)
	if err != nil || len(hooks) != 2 || hooks[0].Name() != "10-first" {
		t.Fatalf("Dir = %v, %v", hooks, err)
	}
	vars, err := RunPhase(context.Background(), hooks, Request{Phase: Deployed, Version: "v"}, io.Discard, nil)
	if err != nil || vars["A"] != "1" || vars["B"] != "v" {
		t.Fatalf("RunPhase = %v, %v", vars, err)
	}
	if hooks, _ := Dir(filepath.Join(dir, "missing"), 0); hooks != nil {
		t.Error("a missing hooks.d must give no hooks")
	}
}

type failing struct{}

func (failing) Name() string { return "failing" }
func (failing) Run(ctx context.Context, req Request, log io.Writer) (Response, error) {
	if req.Phase != Prepare {
		return Response{}, nil
	}
	io.WriteString(log, "working on "+req.App+"\n")
	return Response{}, &Error{Hook: "failing", Phase: req.Phase, Reason: "redis is not running"}
}

func TestServe(t *testing.T) {
	var out, errb bytes.Buffer
	code := Serve(failing{}, []string{Prepare}, strings.NewReader(`{"app":"web"}`), &out, &errb)
	if code != 1 || !strings.Contains(out.String(), `"message":"redis is not running"`) || !strings.Contains(errb.String(), "working on web") {
		t.Fatalf("Serve = %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	out.Reset()
	if code := Serve(failing{}, []string{Cleanup}, strings.NewReader(""), &out, &errb); code != 0 || out.Len() != 0 {
		t.Fatalf("ignored phase: %d %q", code, out.String())
	}
}
