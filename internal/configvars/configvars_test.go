package configvars

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app", FileName)
	vars := map[string]string{
		"API_KEY":   "s3cr3t",
		"EMPTY":     "",
		"QUOTES":    `say "hi" and \n stays`,
		"DOLLAR":    "$HOME and `cmd`",
		"PEM":       "-----BEGIN KEY-----\nabc\n-----END KEY-----\n",
		"SPACES":    "  padded  ",
		"URL":       "postgres://u:p@h/db?x=1#frag",
		"UNICODE_1": "café ☕",
	}
	if err := Write(path, vars, -1); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640: config vars must never be world-readable", fi.Mode().Perm())
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, vars) {
		t.Errorf("read back %q\nwant %q", got, vars)
	}
	if m, _ := Read(filepath.Join(t.TempDir(), "none")); len(m) != 0 {
		t.Error("a missing file must read as no vars")
	}
}

func TestBadFile(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"A=1\nnot a line\n", ":2: want KEY=VALUE"},
		{"A=\"open\nstill open\n", ":1: the quoted value of A never ends"},
	} {
		p := filepath.Join(t.TempDir(), FileName)
		os.WriteFile(p, []byte(tc.in), 0o600)
		if _, err := Read(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Read(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestCheckName(t *testing.T) {
	for k, ok := range map[string]bool{"API_KEY": true, "_x": true, "a1": true, "1A": false, "A-B": false, "PORT": false, "JECLOUD_APP": false, "": false} {
		if (CheckName(k) == nil) != ok {
			t.Errorf("CheckName(%q) ok=%v", k, !ok)
		}
	}
}
