package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHandEditPositions: hand edits of a file as the agent writes it
// (indented, many lines) are reported at the line and column of the value
// at fault, also inside nested objects and lists, in JSON's words.
func TestHandEditPositions(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var a App
	a.Request("841bc9a0e2f1", now, false)
	a.Succeed(now)
	a.Request("1fe35a77c0d2", now, false)
	a.Fail("npm ci failed", now)
	a.Request("7c3e92aaaaaa", now, false)
	a.Deployment.State = StatePreparing
	a.Deployment.TarBytes = 1234
	a.Scale = map[string]int{"web": 2}
	good, err := Encode(&a)
	if err != nil {
		t.Fatal(err)
	}
	// at returns ":LINE:COL: " of the first occurrence of s.
	at := func(text, s string) string {
		i := strings.Index(text, s)
		if i < 0 {
			t.Fatalf("%q not in\n%s", s, text)
		}
		line := strings.Count(text[:i], "\n") + 1
		col := i - strings.LastIndex(text[:i], "\n")
		return fmt.Sprintf(":%d:%d: ", line, col)
	}
	cases := []struct {
		name, old, new string // replace old with new in the good file
		mark           string // the error is at the first occurrence of mark after the edit
		want           string // what follows the position
	}{
		{"nested number as string", `"tar_bytes": 1234`, `"tar_bytes": "1234"`, `"1234"`, `deployment.tar_bytes: wrong type: got JSON string, want a whole number`},
		{"string in a list of objects", `"reason": "npm ci failed"`, `"reason": 42`, `42`, `recent_failed_deployments.reason: wrong type: got JSON number, want a string`},
		{"object as string", `"deployment": {`, `"deployment": "7c3e92aaaaaa", "x": {`, `"7c3e92aaaaaa", "x"`, `deployment: wrong type: got JSON string, want an object {...}`},
		{"map value", `"web": 2`, `"web": 2.5`, `2.5`, `scale: wrong type: got JSON number 2.5, want a whole number`},
		{"bool as list", `"deployed_versions": [`, `"deployed_versions": true, "y": [`, `true`, `deployed_versions: wrong type: got JSON bool, want a list [...]`},
		{"bad nested date", `"fail_date": "2026-03-01T12:00:00Z"`, `"fail_date": "1st of March"`, `"1st of March"`, `"1st of March" is not a date`},
		{"bad version in a nested object", `"version": "7c3e92aaaaaa",`, `"version": "7c3e92",`, `"7c3e92"`, `deployment.version "7c3e92": invalid version ID`},
		{"trailing comma deep inside", `"tar_bytes": 1234`, `"tar_bytes": 1234,`, "}", `invalid character '}' looking for beginning of object key string`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(good), tc.old) {
				t.Fatalf("%q not in\n%s", tc.old, good)
			}
			text := strings.Replace(string(good), tc.old, tc.new, 1)
			p := filepath.Join(t.TempDir(), "app.json")
			os.WriteFile(p, []byte(text), 0o640)
			var got App
			err := Read(p, &got)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a ParseError", err)
			}
			if want := p + at(text, tc.mark) + tc.want; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error\n  %s\nwant it to start with\n  %s\nin\n%s", err, want, text)
			}
		})
	}
	t.Logf("summary: hand edits of an agent-written app.json: %d cases, each at the line and column of the value at fault", len(cases))
}
