package push

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/remote"
)

// TestServerCannotDriveTheTerminal: a server (or a hook, or npm on it)
// whose output carries escape sequences (OSC 52 writes the user's
// clipboard, CSI moves the cursor and erases lines, OSC 0 sets the window
// title, a lone C1 byte) in plain output, in status, ps and releases JSON and in the
// last line of a failure: jepush shows them, escaped, and writes none of
// them to the terminal (issue #17 part 5).
func TestServerCannotDriveTheTerminal(t *testing.T) {
	agent, err := filepath.Abs("testdata/hostileagent.sh")
	if err != nil {
		t.Fatal(err)
	}
	out, errb := &syncBuffer{}, &syncBuffer{}
	c := &Client{App: "shop", Env: "dev", Targets: []remote.Target{{Local: true, Root: t.TempDir(), Agent: agent}},
		Stdout: out, Stderr: errb, StatusCmd: "jepush status dev"}
	ctx := context.Background()
	var errs []string
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	keep(c.Push(ctx, appDir(t), Options{}))
	keep(c.Status(ctx, false))
	keep(c.Status(ctx, true)) // the agents' JSON passed on
	keep(c.PS(ctx, false))
	keep(c.Releases(ctx, false))
	keep(c.Logs(ctx, false, 10))
	keep(c.ShowConfig(ctx))
	all := out.String() + errb.String() + strings.Join(errs, "\n")
	for _, want := range []string{`\x1b]52;c;Y3VybCBldmlsfHNo\x07`, "forged line", `\x1b[2K`, `mallory\x1b[2K`} {
		if !strings.Contains(all, want) {
			t.Errorf("the output lacks %q (the test would prove nothing):\n%s", want, all)
		}
	}
	for _, bad := range []string{"\x1b", "\x07", "\x9b", "\u009b", "\x7f"} {
		if strings.Contains(all, bad) {
			t.Errorf("a server's %q reached the terminal:\n%q", bad, all)
		}
	}
}

// TestPrintableWalk: strings held in interfaces and map keys are escaped
// too, not only struct fields.
func TestPrintableWalk(t *testing.T) {
	doc := struct {
		A any
		M map[string]any
		L []any
	}{A: "a\x1b[2J", M: map[string]any{"k\x1b]0;t\x07": "v\x9b"}, L: []any{"x\x07", map[string]any{"y": "\x1b"}}}
	printable(&doc)
	got := fmt.Sprint(doc)
	for _, bad := range []string{"\x1b", "\a", "\x9b"} {
		if strings.Contains(got, bad) {
			t.Errorf("left raw: %s", got)
		}
	}
	if doc.A != `a\x1b[2J` || doc.M[`k\x1b]0;t\x07`] != `v\x9b` {
		t.Errorf("printable = %s", got)
	}
}
