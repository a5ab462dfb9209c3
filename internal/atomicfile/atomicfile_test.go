package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.json")
	for _, content := range []string{"one", "two, longer", ""} {
		if err := WriteFile(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o640 {
			t.Errorf("mode %v, want 0640", fi.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("leftover files: %v", entries)
	}
}

func TestWriteFileFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	// Renaming a file over a directory fails: the temp file must go.
	p := filepath.Join(dir, "target")
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("x"), 0o644); err == nil {
		t.Fatal("want an error writing over a non-empty directory")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("leftover files: %v", entries)
	}
}

func TestSymlinkAndCleanTemps(t *testing.T) {
	dir := t.TempDir()
	cur := filepath.Join(dir, "current")
	for _, target := range []string{"aaa", "bbb"} {
		if err := Symlink(target, cur); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.Readlink(cur); got != target {
			t.Fatalf("current -> %q, want %q", got, target)
		}
	}
	// Leftovers as a crash would leave them.
	stale := TempName(filepath.Join(dir, "app.json"))
	os.WriteFile(stale, []byte("{"), 0o644)
	os.Symlink("x", TempName(cur))
	os.Mkdir(filepath.Join(dir, ".keepdir.tmp-1"), 0o755)
	removed, err := CleanTemps(dir)
	if err != nil || len(removed) != 2 {
		t.Fatalf("CleanTemps removed %v, %v; want 2 files", removed, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".keepdir.tmp-1")); err != nil {
		t.Error("CleanTemps removed a directory")
	}
}

func TestCreateCommitAbort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big")
	f, err := Create(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("streamed")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("%s exists before Commit", path)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Abort() // no-op after Commit
	if b, err := os.ReadFile(path); err != nil || string(b) != "streamed" {
		t.Fatalf("after Commit: %q, %v", b, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}

	g, err := Create(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	g.Write([]byte("half"))
	g.Abort()
	if b, _ := os.ReadFile(path); string(b) != "streamed" {
		t.Fatalf("Abort changed the file: %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("Abort left files behind: %v", entries)
	}
}

func TestCommitAs(t *testing.T) {
	for _, tc := range []struct {
		name, as string // as: relative to the temp dir
		ok       bool
	}{
		{"same directory", "named-by-hash", true},
		{"other directory", "sub/named-by-hash", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.Mkdir(filepath.Join(dir, "sub"), 0o755)
			f, err := Create(filepath.Join(dir, "unnamed"), 0o644)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("content"))
			as := filepath.Join(dir, tc.as)
			err = f.CommitAs(as)
			f.Abort()
			if tc.ok != (err == nil) {
				t.Fatalf("CommitAs(%s): %v, want ok=%v", tc.as, err, tc.ok)
			}
			_, serr := os.Stat(as)
			if tc.ok != (serr == nil) {
				t.Errorf("after CommitAs: stat %s: %v", as, serr)
			}
			want := []string{"sub"}
			if tc.ok {
				want = []string{"named-by-hash", "sub"}
			}
			var got []string
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				got = append(got, e.Name())
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("%s holds %v, want %v", dir, got, want)
			}
		})
	}
}

func TestTempFor(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		ok         bool
	}{
		{filepath.Base(TempName("/x/config.env")), "config.env", true},
		{filepath.Base(TempName("/x/841bc9a0e2f1.tar.zst")), "841bc9a0e2f1.tar.zst", true},
		{".a.tmp-b.tmp-0123", "a.tmp-b", true},
		{"config.env", "", false},
		{"x.tmp-1", "", false},
	} {
		if got, ok := TempFor(tc.name); got != tc.want || ok != tc.ok {
			t.Errorf("TempFor(%q) = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
