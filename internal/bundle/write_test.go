package bundle

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestID(t *testing.T) {
	for _, tc := range []struct {
		sum  []byte
		want string
	}{
		{bytes.Repeat([]byte{0xab}, 32), "abababababab"},
		{[]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xff}, "0123456789ab"},
		{[]byte{0x0f}, "0f"},
	} {
		if got := ID(tc.sum); got != tc.want {
			t.Errorf("ID(%x) = %q, want %q", tc.sum, got, tc.want)
		}
	}
	id := sumID(nil)
	if len(id) != IDLen || strings.ToLower(id) != id {
		t.Errorf("ID of a SHA-256 = %q, want %d lowercase hex digits", id, IDLen)
	}
}

var sampleTree = []string{
	"package.json={\"name\":\"app\"}",
	"server.js=console.log(1)\n",
	"bin/start*=#!/bin/sh\nexec node server.js\n",
	"lib/a/b/c.txt=deep",
	"lib/util.js=module.exports = {}",
	"lib-other.js=x",
	"empty/",
	"public/index.html=<html></html>",
	"public/home.html->index.html",
	"current->lib/a",
}

func TestWriteDeterministic(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "src")
	mkTree(t, src, sampleTree...)
	id, data := writeBundle(t, src)
	if got := sumID(decompress(t, data)); got != id {
		t.Fatalf("Write returned %s, the hash of its tar is %s", id, got)
	}
	if got, err := Hash(src, WriteOptions{}); err != nil || got != id {
		t.Fatalf("Hash = %s, %v; Write's ID is %s", got, err, id)
	}

	// The same tree made in another order, elsewhere, at another time.
	reversed := filepath.Join(base, "reversed")
	rev := slices.Clone(sampleTree)
	slices.Reverse(rev)
	mkTree(t, reversed, rev...)

	same := map[string]func(t *testing.T, dir string){
		"touch": func(t *testing.T, dir string) {
			old := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
			filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error {
				os.Chtimes(p, old, old)
				return nil
			})
		},
		"cp -r": func(t *testing.T, dir string) {
			cp := filepath.Join(base, "copy")
			if out, err := exec.Command("cp", "-R", dir, cp).CombinedOutput(); err != nil {
				t.Fatalf("cp -R: %v %s", err, out)
			}
			if id2, _ := writeBundle(t, cp); id2 != id {
				t.Errorf("copy: ID %s, want %s", id2, id)
			}
		},
		"other non-exec mode bits": func(t *testing.T, dir string) {
			chmod(t, filepath.Join(dir, "server.js"), 0o600)
			chmod(t, filepath.Join(dir, "lib"), 0o700)
			chmod(t, filepath.Join(dir, "bin/start"), 0o700)
		},
	}
	for name, change := range same {
		t.Run(name, func(t *testing.T) {
			change(t, src)
			if id2, _ := writeBundle(t, src); id2 != id {
				t.Errorf("ID %s, want %s", id2, id)
			}
		})
	}
	if id2, _ := writeBundle(t, reversed); id2 != id {
		t.Errorf("tree made in reverse order: ID %s, want %s", id2, id)
	}

	differ := map[string]func(dir string){
		"content":        func(dir string) { os.WriteFile(filepath.Join(dir, "server.js"), []byte("console.log(2)\n"), 0o644) },
		"executable bit": func(dir string) { chmod(t, filepath.Join(dir, "server.js"), 0o744) },
		"link target": func(dir string) {
			os.Remove(filepath.Join(dir, "current"))
			os.Symlink("lib", filepath.Join(dir, "current"))
		},
		"empty dir": func(dir string) { os.Mkdir(filepath.Join(dir, "empty2"), 0o755) },
		"file name": func(dir string) { os.Rename(filepath.Join(dir, "lib-other.js"), filepath.Join(dir, "lib-other2.js")) },
	}
	for name, change := range differ {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "app")
			mkTree(t, dir, sampleTree...)
			change(dir)
			if id2, _ := writeBundle(t, dir); id2 == id {
				t.Errorf("ID unchanged (%s)", id)
			}
		})
	}
}

func chmod(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func TestWriteCanonicalHeaders(t *testing.T) {
	src := t.TempDir()
	long := strings.Repeat("long-directory-name/", 15) + "file.txt" // > 255 bytes: needs a PAX record
	mkTree(t, src, append(sampleTree, long+"=x", "café.txt=unicode")...)
	_, data := writeBundle(t, src)
	raw := decompress(t, data)
	if !bytes.HasSuffix(raw, make([]byte, 1024)) {
		t.Error("tar does not end with the end-of-archive trailer")
	}

	want := []string{
		"bin/", "bin/start", "café.txt", "current", "empty/", "lib-other.js", "lib/", "lib/a/", "lib/a/b/",
		"lib/a/b/c.txt", "lib/util.js",
	}
	var names []string
	for _, h := range headers(t, raw) {
		names = append(names, h.Name)
		if h.ModTime.Unix() != 0 || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s: times %v %v %v, want the epoch and none", h.Name, h.ModTime, h.AccessTime, h.ChangeTime)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d %q:%q, want 0:0 and no names", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if len(h.Xattrs) > 0 {
			t.Errorf("%s: xattrs %v", h.Name, h.Xattrs)
		}
		for k := range h.PAXRecords {
			if k != "path" {
				t.Errorf("%s: PAX record %q, want only path records for long or non-ASCII names", h.Name, k)
			}
		}
		wantMode := map[byte]int64{tar.TypeDir: 0o755, tar.TypeSymlink: 0o777}[h.Typeflag]
		switch h.Name {
		case "bin/start":
			wantMode = 0o755
		case "current":
			if h.Linkname != "lib/a" {
				t.Errorf("current -> %q, want lib/a", h.Linkname)
			}
		}
		if wantMode == 0 {
			wantMode = 0o644
		}
		if h.Mode != wantMode {
			t.Errorf("%s: mode %o, want %o", h.Name, h.Mode, wantMode)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("entries not sorted: %q", names)
	}
	for _, w := range want {
		if !slices.Contains(names, w) {
			t.Errorf("entry %q missing from %q", w, names)
		}
	}
	if !slices.Contains(names, long) {
		t.Errorf("long name missing")
	}
	files, err := Files(src)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(files, names) {
		t.Errorf("Files = %q\nbundle has %q", files, names)
	}
}

func TestWriteSymlinks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tree    []string
		wantErr string // "" if Write must succeed
	}{
		{"file link", []string{"a=1", "b->a"}, ""},
		{"dir link", []string{"d/x=1", "e->d"}, ""},
		{"link up and back in", []string{"d/x=1", "d/l->../d/x"}, ""},
		{"dangling inside", []string{"l->missing"}, ""},
		{"link into ignored dir", []string{"node_modules/x=1", "l->node_modules/x"}, ""},
		{"absolute", []string{"l->/etc/passwd"}, "the target is absolute"},
		{"escape", []string{"d/l->../../x"}, "leads outside"},
		{"escape from top", []string{"l->.."}, "leads outside"},
		{"escape through a link to the top", []string{"a->.", "s->a/.."}, "leads outside"},
		{"escape through a chain", []string{"d/a->..", "d/b->a/.."}, "leads outside"},
		{"loop", []string{"a->b", "b->a"}, "too many symlinks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "app")
			mkTree(t, dir, tc.tree...)
			_, err := Write(dir, io.Discard, WriteOptions{})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Write: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Write succeeded, want an error with %q", tc.wantErr)
			}
			for _, s := range []string{tc.wantErr, dir, "->", "add the link to .jepushignore"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestWriteRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	mkTree(t, dir, "a=1", "ignored/")
	if err := syscall.Mkfifo(filepath.Join(dir, "ignored", "fifo"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	os.WriteFile(filepath.Join(dir, IgnoreFile), []byte("ignored/\n"), 0o644)
	if _, err := Write(dir, io.Discard, WriteOptions{}); err != nil {
		t.Fatalf("a FIFO in an ignored directory: %v", err)
	}
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Write(dir, io.Discard, WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "FIFO") {
		t.Errorf("Write with a FIFO: %v, want an error naming %s", err, fifo)
	}
	if _, err := Files(dir); err == nil {
		t.Error("Files with a FIFO: no error")
	}
}

func TestWriteBadDir(t *testing.T) {
	dir := t.TempDir()
	mkTree(t, dir, "f=1")
	for _, p := range []string{filepath.Join(dir, "missing"), filepath.Join(dir, "f")} {
		var buf bytes.Buffer
		if _, err := Write(p, &buf, WriteOptions{}); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("Write(%s): %v, want an error naming it", p, err)
		}
		if buf.Len() != 0 {
			t.Errorf("Write(%s) wrote %d bytes", p, buf.Len())
		}
	}
}

func TestWriteProgressAndLevel(t *testing.T) {
	dir := t.TempDir()
	mkTree(t, dir, "a=12345", "b/c=678", "d->a")
	var files int
	var n int64
	id, err := Write(dir, io.Discard, WriteOptions{Progress: func(f int, b int64) { files, n = f, b }})
	if err != nil {
		t.Fatal(err)
	}
	if files != 2 || n != 8 {
		t.Errorf("last progress: %d files, %d bytes; want 2, 8", files, n)
	}
	// The level changes the compressed bytes, not the ID.
	var fast, best bytes.Buffer
	idFast, err1 := Write(dir, &fast, WriteOptions{Level: 1})
	idBest, err2 := Write(dir, &best, WriteOptions{Level: 4})
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if idFast != id || idBest != id {
		t.Errorf("IDs by level: %s %s %s", id, idFast, idBest)
	}
}

// failWriter fails every write with an errno, like a full disk.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) {
	return 0, &os.PathError{Op: "write", Path: "out.tar.zst", Err: syscall.ENOSPC}
}

func TestWriteOutputError(t *testing.T) {
	dir := t.TempDir()
	mkTree(t, dir, "a=1")
	_, err := Write(dir, failWriter{}, WriteOptions{})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Write to a full disk: %v, want ENOSPC wrapped", err)
	}
}
