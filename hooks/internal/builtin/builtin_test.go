package builtin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/hook"
)

// fake implements install and deployed and records what it was given.
type fake struct {
	calls []string
	err   error
}

func (f *fake) Name() string { return "fake" }
func (f *fake) Install(ctx context.Context, e Env) error {
	f.calls = append(f.calls, "install:"+e.Want+":"+boolStr(e.Declared))
	return f.err
}
func (f *fake) Deployed(ctx context.Context, e Env) error {
	f.calls = append(f.calls, "deployed:"+e.Want+":"+boolStr(e.Declared))
	return f.err
}

func boolStr(b bool) string {
	if b {
		return "declared"
	}
	return "undeclared"
}

func TestRun(t *testing.T) {
	up := func() bool { return true }
	down := func() bool { return false }
	for _, tc := range []struct {
		name, toml, phase string
		o                 Options
		fail              error
		want              string // the calls, joined
		wantLog, wantErr  string
	}{
		{name: "not its phase", toml: "[services]\nredis = \"7\"\n", phase: hook.Prepare, o: Options{Service: "redis", Systemd: up}},
		{name: "no such method", toml: "", phase: hook.Cleanup, o: Options{}},
		{name: "no service needed", toml: "", phase: hook.Install, o: Options{}, want: "install::undeclared"},
		{name: "declared", toml: "[services]\nredis = \"7\"\n", phase: hook.Install, o: Options{Service: "redis", Systemd: up}, want: "install:7:declared"},
		{name: "not declared", toml: "[services]\n", phase: hook.Install, o: Options{Service: "redis", Systemd: up}},
		{name: "not declared, removes", toml: "[services]\n", phase: hook.Deployed, o: Options{Service: "mail", Undeclared: true, Systemd: up}, want: "deployed::undeclared"},
		{name: "no systemd", toml: "[services]\nredis = \"7\"\n", phase: hook.Install, o: Options{Service: "redis", Systemd: down, Label: "Redis"},
			wantLog: "systemd is not running here: Redis is not set up\n"},
		{name: "no systemd, not declared", toml: "[services]\n", phase: hook.Install, o: Options{Service: "mail", Undeclared: true, Systemd: down, Label: "mail"}},
		{name: "bad spec", toml: "[services\n", phase: hook.Install, o: Options{Service: "redis"}, wantErr: "install hook fake failed: "},
		{name: "failure", toml: "", phase: hook.Deployed, o: Options{}, fail: errors.New("postfix is down"), want: "deployed::undeclared",
			wantErr: "deployed hook fake failed: postfix is down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rel := t.TempDir()
			if err := os.WriteFile(filepath.Join(rel, "jecloud.toml"), []byte(tc.toml), 0o644); err != nil {
				t.Fatal(err)
			}
			f := &fake{err: tc.fail}
			var log strings.Builder
			_, err := Run(context.Background(), f, tc.o, hook.Request{Phase: tc.phase, ReleaseDir: rel}, &log)
			var he *hook.Error
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Run: %v", err)
			case tc.wantErr != "" && (!errors.As(err, &he) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Run: %v, want a *hook.Error with %q", err, tc.wantErr)
			}
			if got := strings.Join(f.calls, ","); got != tc.want {
				t.Errorf("calls %q, want %q", got, tc.want)
			}
			if log.String() != tc.wantLog {
				t.Errorf("log %q, want %q", log.String(), tc.wantLog)
			}
		})
	}
}
