package lines

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestWriter(t *testing.T) {
	long := strings.Repeat("x", maxLine+1)
	for _, tc := range []struct {
		name   string
		writes []string
		flush  bool
		want   []string
		last   string
	}{
		{name: "whole lines", writes: []string{"a\nb\n"}, want: []string{"a", "b"}, last: "b"},
		{name: "split across writes", writes: []string{"he", "llo\nwor", "ld\n"}, want: []string{"hello", "world"}, last: "world"},
		{name: "unfinished line waits", writes: []string{"a\nb"}, want: []string{"a"}, last: "a"},
		{name: "flush gives the unfinished line", writes: []string{"a\nb"}, flush: true, want: []string{"a", "b"}, last: "b"},
		{name: "crlf", writes: []string{"a\r\n"}, want: []string{"a"}, last: "a"},
		{name: "blank lines are passed on, not last", writes: []string{" oops \n\n  \n"}, want: []string{" oops ", "", "  "}, last: "oops"},
		{name: "a runaway line is cut", writes: []string{long}, want: []string{long}, last: long},
		{name: "flush of nothing", flush: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			w := &Writer{Line: func(l string) error { got = append(got, l); return nil }}
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if tc.flush {
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Errorf("lines %q, want %q", got, tc.want)
			}
			if w.Last() != tc.last {
				t.Errorf("Last() = %q, want %q", w.Last(), tc.last)
			}
		})
	}
}

func TestPrefixed(t *testing.T) {
	var b strings.Builder
	w := Prefixed(&b, "web1: ")
	w.Write([]byte("one\ntw"))
	w.Write([]byte("o\nthree"))
	w.Flush()
	if want := "web1: one\nweb1: two\nweb1: three\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestLineError(t *testing.T) {
	boom := errors.New("boom")
	w := &Writer{Line: func(string) error { return boom }}
	if _, err := w.Write([]byte("a\n")); !errors.Is(err, boom) {
		t.Errorf("Write: %v, want %v", err, boom)
	}
	w.Write([]byte("b"))
	if err := w.Flush(); !errors.Is(err, boom) {
		t.Errorf("Flush: %v, want %v", err, boom)
	}
}

// TestPrintable: what a server sends cannot drive the user's terminal.
func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "added 52 packages in 2s", "added 52 packages in 2s"},
		{"tab and unicode kept", "état\tok ✓", "état\tok ✓"},
		{"clipboard write (OSC 52)", "\x1b]52;c;Y3VybCBldmlsfHNo\x07", `\x1b]52;c;Y3VybCBldmlsfHNo\x07`},
		{"cursor up and erase line", "done\x1b[1A\x1b[2K", `done\x1b[1A\x1b[2K`},
		{"carriage return", "ok\rFAKE", `ok\x0dFAKE`},
		{"C1 CSI as a rune", "a\u009b31mb", `a\u009b31mb`},
		{"C1 CSI as a lone byte", "a\x9b31mb", `a\x9b31mb`},
		{"DEL and NUL", "a\x7f\x00", `a\x7f\x00`},
		{"window title", "\x1b]0;pwned\x1b\\", `\x1b]0;pwned\x1b\`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Printable(tc.in); got != tc.want {
				t.Errorf("Printable(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestPrintableJSON(t *testing.T) {
	in := []byte("{\"backoff\":{\"x\":\"\u009b2J\x7f\x9b ok é\"}}")
	got := string(PrintableJSON(in))
	if want := `{"backoff":{"x":"\u009b2J\u007f\ufffd ok é"}}`; got != want {
		t.Errorf("PrintableJSON = %s, want %s", got, want)
	}
	var v map[string]map[string]string
	if err := json.Unmarshal([]byte(got), &v); err != nil || v["backoff"]["x"] != "\u009b2J\x7f\ufffd ok é" {
		t.Errorf("not the same JSON: %v %q", err, v)
	}
}
