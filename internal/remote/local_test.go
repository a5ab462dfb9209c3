package remote

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeAgent writes a shell script standing in for jeagent: it prints its
// arguments, copies stdin to $0.in, and exits with the status in the file
// $0.exit if there is one.
func fakeAgent(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "jeagent")
	script := `#!/bin/sh
printf '%s\n' "$@"
cat > "$0.in"
echo "to stderr" >&2
case "$*" in *sleep*) exec sleep 5;; esac
[ -f "$0.exit" ] && exit "$(cat "$0.exit")"
exit 0
`
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLocal(t *testing.T) {
	agent := fakeAgent(t)
	root := t.TempDir()
	l, err := NewLocal(Target{Local: true, Root: root, Agent: agent})
	if err != nil {
		t.Fatal(err)
	}
	if l.Name() != "local" {
		t.Errorf("Name = %q", l.Name())
	}
	ctx := context.Background()
	var out, errb bytes.Buffer
	err = l.Run(ctx, []string{"receive", "my app", "prod", "841bc9a0e2f1"}, strings.NewReader("bundle bytes"), &out, &errb)
	if err != nil {
		t.Fatal(err)
	}
	if want := "--root\n" + root + "\nreceive\nmy app\nprod\n841bc9a0e2f1\n"; out.String() != want {
		t.Errorf("argv:\n%s\nwant\n%s", out.String(), want)
	}
	if errb.String() != "to stderr\n" {
		t.Errorf("stderr = %q", errb.String())
	}
	if in, _ := os.ReadFile(agent + ".in"); string(in) != "bundle bytes" {
		t.Errorf("stdin = %q", in)
	}

	os.WriteFile(agent+".exit", []byte("3"), 0o644)
	err = l.Run(ctx, []string{"has", "app", "prod", "841bc9a0e2f1"}, nil, &out, &errb)
	if code, ok := ExitCode(err); !ok || code != 3 {
		t.Errorf("Run = %v, want exit status 3", err)
	}
	os.Remove(agent + ".exit")

	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = l.Run(cctx, []string{"sleep"}, nil, &out, &errb)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("cancelled Run = %v after %s", err, time.Since(start))
	}
}

func TestLocalAgentLookup(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PATH", dir)
	if _, err := NewLocal(Target{Local: true}); err == nil || !strings.Contains(err.Error(), "jeagent not found") {
		t.Errorf("no jeagent anywhere: %v", err)
	}
	if _, err := NewLocal(Target{Local: true, Agent: "/nonexistent/jeagent"}); err == nil || !strings.Contains(err.Error(), "agent command") {
		t.Errorf("missing agent command: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "jeagent"), []byte("#!/bin/sh\necho on-path \"$@\"\n"), 0o755)
	l, err := NewLocal(Target{Local: true, Root: "rel"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := l.Run(context.Background(), []string{"status"}, nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	cwd, _ := os.Getwd()
	if want := "on-path --root " + filepath.Join(cwd, "rel") + " status\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}
