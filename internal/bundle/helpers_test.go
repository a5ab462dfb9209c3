package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// mkTree creates entries under root. Each spec is one of
//
//	"dir/"            a directory
//	"file=content"    a regular file, mode 0644
//	"file*=content"   an executable file, mode 0755
//	"link->target"    a symlink
//
// Parent directories are created as needed.
func mkTree(t testing.TB, root string, specs ...string) {
	t.Helper()
	for _, s := range specs {
		var err error
		switch {
		case strings.HasSuffix(s, "/"):
			err = os.MkdirAll(filepath.Join(root, s), 0o755)
		case strings.Contains(s, "->"):
			name, target, _ := strings.Cut(s, "->")
			p := filepath.Join(root, name)
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				err = os.Symlink(target, p)
			}
		default:
			name, data, ok := strings.Cut(s, "=")
			if !ok {
				t.Fatalf("bad tree spec %q", s)
			}
			mode := fs.FileMode(0o644)
			if n, found := strings.CutSuffix(name, "*"); found {
				name, mode = n, 0o755
			}
			p := filepath.Join(root, name)
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				err = os.WriteFile(p, []byte(data), mode)
			}
			if err == nil {
				err = os.Chmod(p, mode)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// writeBundle runs Write on dir and returns the ID and the bundle.
func writeBundle(t testing.TB, dir string) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	id, err := Write(dir, &buf, WriteOptions{})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return id, buf.Bytes()
}

func decompress(t testing.TB, data []byte) []byte {
	t.Helper()
	dec, err := zstd.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	out, err := io.ReadAll(dec)
	if err != nil {
		t.Fatalf("decompress: %v", err)
	}
	return out
}

var testEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))

func compress(data []byte) []byte {
	return testEncoder.EncodeAll(data, nil)
}

func sumID(data []byte) string {
	s := sha256.Sum256(data)
	return ID(s[:])
}

// headers lists the tar headers of an uncompressed tar stream.
func headers(t testing.TB, tarData []byte) []*tar.Header {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(tarData))
	var hs []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hs
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		hs = append(hs, h)
	}
}

// tarEntry describes one entry of a hand-made tar.
type tarEntry struct {
	name string
	typ  byte
	data string
	link string
	mode int64
	size int64 // header size when data is not given (0: len(data))
}

func dirEnt(name string) tarEntry { return tarEntry{name: name, typ: tar.TypeDir, mode: 0o755} }
func regEnt(name, data string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeReg, data: data, mode: 0o644}
}
func linkEnt(name, link string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeSymlink, link: link, mode: 0o777}
}

// mkTar builds an uncompressed tar with archive/tar, trailer included.
func mkTar(t testing.TB, ents ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		size := int64(len(e.data))
		if e.size > 0 {
			size = e.size
		}
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			h.Size = size
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := io.CopyN(tw, io.MultiReader(strings.NewReader(e.data), zeros{}), size); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// snapshot describes the tree under root, one line per path, for comparing
// trees: "d 755", "f 644 <content hash>", "l <target>".
func snapshot(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, fmt.Sprintf("%s l %s", rel, target))
		case d.IsDir():
			out = append(out, fmt.Sprintf("%s d %o", rel, info.Mode().Perm()))
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out = append(out, fmt.Sprintf("%s f %o %x", rel, info.Mode().Perm(), sha256.Sum256(data)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}
