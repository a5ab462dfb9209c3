package state

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
)

// FuzzApp feeds app.json parsing arbitrary bytes: it never panics, a file
// it accepts survives a rewrite unchanged in meaning (unknown keys kept),
// and a file it refuses is reported as a *ParseError naming the file.
func FuzzApp(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"current_version": "841bc9a0e2f1"}`,
		`{"current_version": "841bc9a0e2f1", "deployment": {"version": "1fe35a77c0d2", "state": "extracting", "x": 1}, "note": [1, {"a": null}]}`,
		`{"recent_failed_deployments": [{"version": "7c3e92aaaaaa", "reason": "out of disk space", "fail_date": "2026-01-01T00:00:00Z"}]}`,
		`{"deployment": {"version": "1fe35a77c0d2",}}`,
		`{"current_version": 12}`,
		``,
		`{"backoff": {"step": "cleanup", "failures": 3, "next_try": "not a date"}}`,
	} {
		f.Add([]byte(seed))
	}
	path := filepath.Join(f.TempDir(), "app.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		var a App
		err := decode(path, data, &a)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Path != path {
				t.Fatalf("error %v is not a ParseError naming the file", err)
			}
			return
		}
		out, err := Encode(&a)
		if err != nil {
			t.Fatalf("encode of an accepted file: %v", err)
		}
		var b App
		if err := decode(path, out, &b); err != nil {
			t.Fatalf("rewritten file does not parse: %v\n%s", err, out)
		}
		again, _ := Encode(&b)
		if !bytes.Equal(out, again) {
			t.Fatalf("rewrite is not stable:\n%s\n%s", out, again)
		}
	})
}
