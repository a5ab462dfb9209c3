package bundle

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

func TestRoundTrip(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	mkTree(t, src, sampleTree...)
	mkTree(t, src, strings.Repeat("n", 120)+"/"+strings.Repeat("m", 150)+"=long name", "big="+strings.Repeat("0123456789", 300_000))
	id, data := writeBundle(t, src)

	info, err := Inspect(bytes.NewReader(data), Limits{})
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	if err := os.Mkdir(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	xinfo, err := Extract(bytes.NewReader(data), dst, Limits{})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if info.ID != id || xinfo != info {
		t.Errorf("Write ID %s, Inspect %+v, Extract %+v", id, info, xinfo)
	}
	files, _ := Files(src)
	raw := decompress(t, data)
	if info.Entries != len(files) || info.TarBytes != int64(len(raw)) || info.ContentBytes < 3_000_000 {
		t.Errorf("Info %+v: want %d entries, %d tar bytes", info, len(files), len(raw))
	}
	if got, want := snapshot(t, dst), snapshot(t, src); !slices.Equal(got, want) {
		t.Errorf("extracted tree differs:\n got %q\nwant %q", got, want)
	}
	// The extracted tree bundles to the same ID.
	if id2, _ := writeBundle(t, dst); id2 != id {
		t.Errorf("re-bundled ID %s, want %s", id2, id)
	}
}

func TestExtractModesIgnoreUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	data := compress(mkTar(t,
		dirEnt("d/"),
		tarEntry{name: "d/x", typ: tar.TypeReg, data: "x", mode: 0o4711}, // setuid is dropped, x kept
		tarEntry{name: "d/r", typ: tar.TypeReg, data: "r", mode: 0o600},
		tarEntry{name: "e/", typ: tar.TypeDir, mode: 0o700},
	))
	dst := t.TempDir()
	if _, err := Extract(bytes.NewReader(data), dst, Limits{}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]fs.FileMode{"d": fs.ModeDir | 0o755, "e": fs.ModeDir | 0o755, "d/x": 0o755, "d/r": 0o644} {
		st, err := os.Lstat(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, st.Mode(), want)
		}
	}
}

// hostile is a corpus of bundles the rules must refuse. Each is checked with
// Inspect and Extract, which must give the same error.
var hostile = []struct {
	name     string
	ents     []tarEntry
	lim      Limits
	unsafe   string // expected reason substring of an UnsafeEntryError
	tooLarge bool   // expect ErrTooLarge
}{
	{name: "dot dot", ents: []tarEntry{regEnt("../evil", "x")}, unsafe: `".." element`},
	{name: "dot dot inside", ents: []tarEntry{dirEnt("a/"), regEnt("a/../../evil", "x")}, unsafe: `".." element`},
	{name: "dot dot dir", ents: []tarEntry{dirEnt("../")}, unsafe: `".." element`},
	{name: "absolute", ents: []tarEntry{regEnt("/tmp/evil", "x")}, unsafe: "absolute path"},
	{name: "empty name", ents: []tarEntry{regEnt("", "x")}, unsafe: "empty name"},
	{name: "long element", ents: []tarEntry{regEnt(strings.Repeat("x", 256), "x")}, unsafe: "longer than 255"},
	{name: "long name", ents: []tarEntry{regEnt(strings.Repeat("x/", 2100)+"x", "x")}, unsafe: "longer than 4096"},
	{name: "double slash", ents: []tarEntry{dirEnt("a/"), regEnt("a//b", "x")}, unsafe: "canonical"},
	{name: "dot element", ents: []tarEntry{dirEnt("a/"), regEnt("a/./b", "x")}, unsafe: "canonical"},
	{name: "file names the top", ents: []tarEntry{regEnt(".", "x")}, unsafe: "top"},
	{name: "symlink absolute", ents: []tarEntry{linkEnt("l", "/etc")}, unsafe: "absolute"},
	{name: "symlink empty", ents: []tarEntry{linkEnt("l", "")}, unsafe: "empty"},
	{name: "symlink escape", ents: []tarEntry{linkEnt("l", "../etc")}, unsafe: "outside"},
	{name: "symlink escape from subdir", ents: []tarEntry{dirEnt("a/"), dirEnt("a/b/"), linkEnt("a/b/l", "../../..")}, unsafe: "outside"},
	{name: "symlink chain", ents: []tarEntry{linkEnt("a", "."), linkEnt("s", "a/..")}, unsafe: "outside"},
	{name: "symlink chain made later", ents: []tarEntry{linkEnt("s", "a/.."), linkEnt("a", ".")}, unsafe: "outside"},
	{name: "symlink loop", ents: []tarEntry{linkEnt("a", "b"), linkEnt("b", "a")}, unsafe: "too many symlinks"},
	{name: "write through symlink", ents: []tarEntry{dirEnt("d/"), linkEnt("a", "d"), regEnt("a/b", "x")}, unsafe: "symlink"},
	{name: "dir through symlink", ents: []tarEntry{dirEnt("d/"), linkEnt("a", "d"), dirEnt("a/x/")}, unsafe: "symlink"},
	{name: "symlink then escape via it", ents: []tarEntry{linkEnt("up", "."), dirEnt("d/"), linkEnt("d/l", "../up/..")}, unsafe: "outside"},
	{name: "parent missing", ents: []tarEntry{regEnt("a/b", "x")}, unsafe: "does not come before"},
	{name: "parent is a file", ents: []tarEntry{regEnt("a", "x"), regEnt("a/b", "x")}, unsafe: "regular file"},
	{name: "hardlink", ents: []tarEntry{regEnt("a", "x"), {name: "b", typ: tar.TypeLink, link: "a"}}, unsafe: "hard links"},
	{name: "hardlink outside", ents: []tarEntry{{name: "b", typ: tar.TypeLink, link: "/etc/shadow"}}, unsafe: "hard links"},
	{name: "char device", ents: []tarEntry{{name: "null", typ: tar.TypeChar}}, unsafe: "device"},
	{name: "block device", ents: []tarEntry{{name: "sda", typ: tar.TypeBlock}}, unsafe: "device"},
	{name: "fifo", ents: []tarEntry{{name: "p", typ: tar.TypeFifo}}, unsafe: "FIFO"},
	{name: "contiguous file type", ents: []tarEntry{{name: "c", typ: tar.TypeCont}}, unsafe: "unsupported"},
	{name: "duplicate file", ents: []tarEntry{regEnt("a", "x"), regEnt("a", "y")}, unsafe: "duplicate"},
	{name: "duplicate dir", ents: []tarEntry{dirEnt("a/"), dirEnt("a/")}, unsafe: "duplicate"},
	{name: "file then dir", ents: []tarEntry{regEnt("a", "x"), dirEnt("a/")}, unsafe: "duplicate"},
	{name: "normalised duplicate", ents: []tarEntry{regEnt("a", "x"), regEnt("./a", "y")}, unsafe: "duplicate"},
	{name: "symlink replaces file", ents: []tarEntry{regEnt("a", "x"), linkEnt("a", "b")}, unsafe: "duplicate"},
	{name: "file over MaxFileBytes", ents: []tarEntry{regEnt("big", strings.Repeat("x", 2000))}, lim: Limits{MaxFileBytes: 1000}, tooLarge: true},
	{name: "too many entries", ents: []tarEntry{regEnt("a", ""), regEnt("b", ""), regEnt("c", "")}, lim: Limits{MaxEntries: 2}, tooLarge: true},
	{name: "tar over MaxTarBytes", ents: []tarEntry{regEnt("a", strings.Repeat("x", 5000))}, lim: Limits{MaxTarBytes: 4096}, tooLarge: true},
}

func TestHostile(t *testing.T) {
	for _, tc := range hostile {
		t.Run(tc.name, func(t *testing.T) {
			data := compress(mkTar(t, tc.ents...))
			_, ierr := Inspect(bytes.NewReader(data), tc.lim)
			parent := t.TempDir()
			dst := filepath.Join(parent, "dst")
			os.Mkdir(dst, 0o755)
			_, xerr := Extract(bytes.NewReader(data), dst, tc.lim)
			if ierr == nil || xerr == nil {
				t.Fatalf("Inspect: %v, Extract: %v; want both to fail", ierr, xerr)
			}
			t.Log(xerr)
			if ierr.Error() != xerr.Error() {
				t.Errorf("Inspect and Extract disagree:\n%v\n%v", ierr, xerr)
			}
			var ue *UnsafeEntryError
			switch {
			case tc.tooLarge:
				if !errors.Is(xerr, ErrTooLarge) {
					t.Errorf("error %v, want ErrTooLarge", xerr)
				}
			case !errors.As(xerr, &ue):
				t.Errorf("error %v, want an UnsafeEntryError", xerr)
			case !strings.Contains(ue.Reason, tc.unsafe):
				t.Errorf("reason %q, want it to mention %q", ue.Reason, tc.unsafe)
			case !strings.HasPrefix(xerr.Error(), "unsafe entry "):
				t.Errorf("message %q", xerr)
			}
			assertOnly(t, parent, "dst")
			assertInside(t, dst)
		})
	}
}

// assertOnly checks that parent holds nothing but the named entries.
func assertOnly(t *testing.T, parent string, names ...string) {
	t.Helper()
	des, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if !slices.Contains(names, de.Name()) {
			t.Errorf("%s written outside the extraction directory", filepath.Join(parent, de.Name()))
		}
	}
}

func TestAcceptedForms(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// What git archive and `tar -C dir -cf - .` write.
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "0123abcd"}})
	tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "./a/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "./a/f", Typeflag: tar.TypeReg, Mode: 0o755, Size: 2})
	tw.Write([]byte("hi"))
	long := "a/" + strings.Repeat("x", 200)
	tw.WriteHeader(&tar.Header{Name: long, Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatGNU})
	tw.WriteHeader(&tar.Header{Name: "a/l", Typeflag: tar.TypeSymlink, Linkname: "f"})
	tw.WriteHeader(&tar.Header{Name: "a/up", Typeflag: tar.TypeSymlink, Linkname: "../a/./f"})
	tw.Close()
	data := compress(buf.Bytes())

	dst := t.TempDir()
	info, err := Extract(bytes.NewReader(data), dst, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Entries != 7 || info.ContentBytes != 2 || info.ID != sumID(buf.Bytes()) {
		t.Errorf("Info %+v", info)
	}
	want := []string{
		"a d 755", "a/f f 755 8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4", "a/l l f", "a/up l ../a/./f",
		long + " f 644 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	}
	if got := snapshot(t, dst); !slices.Equal(got, want) {
		t.Errorf("tree %q\nwant %q", got, want)
	}
}

func TestTrailingGarbage(t *testing.T) {
	plain := mkTar(t, regEnt("a", "x"))
	for _, tail := range [][]byte{make([]byte, 10240-len(plain)%10240), []byte("garbage after the trailer")} {
		withTail := append(slices.Clone(plain), tail...)
		info, err := Inspect(bytes.NewReader(compress(withTail)), Limits{})
		if err != nil {
			t.Fatalf("Inspect: %v", err)
		}
		if info.ID != sumID(withTail) || info.ID == sumID(plain) || info.TarBytes != int64(len(withTail)) {
			t.Errorf("with %d bytes after the trailer: %+v, want the ID of every byte", len(tail), info)
		}
	}
	// Garbage counts against MaxTarBytes too.
	bomb := append(slices.Clone(plain), make([]byte, 1<<20)...)
	if _, err := Inspect(bytes.NewReader(compress(bomb)), Limits{MaxTarBytes: 64 << 10}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("1 MiB after the trailer: %v, want ErrTooLarge", err)
	}
}

// zstdBomb returns a bundle that holds one file of n zeros: a tar header
// frame followed by repeats of one small frame of 8 MiB of zeros, so that
// it is cheap to make whatever n.
func zstdBomb(t testing.TB, n int64) []byte {
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Size: n, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	const chunk = 8 << 20
	out := compress(hdr.Bytes())
	frame := compress(make([]byte, chunk))
	for left := n; left > 0; left -= chunk {
		out = append(out, frame...)
	}
	return out
}

func TestZstdBomb(t *testing.T) {
	const gig = 1 << 30
	data := zstdBomb(t, gig)
	if len(data) > 1<<20 {
		t.Fatalf("bomb is %d bytes", len(data))
	}
	lim := Limits{MaxTarBytes: 4 << 20, MaxFileBytes: 2 * gig}
	start := time.Now()
	_, ierr := Inspect(bytes.NewReader(data), lim)
	dst := t.TempDir()
	_, xerr := Extract(bytes.NewReader(data), dst, lim)
	for _, err := range []error{ierr, xerr} {
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "MaxTarBytes") {
			t.Errorf("error %v, want ErrTooLarge naming MaxTarBytes", err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v to refuse", d)
	}
	if st, err := os.Stat(filepath.Join(dst, "zeros")); err == nil && st.Size() > lim.MaxTarBytes {
		t.Errorf("wrote %d bytes, over the cap of %d", st.Size(), lim.MaxTarBytes)
	}
	// MaxFileBytes stops it before any byte of it is read.
	if _, err := Inspect(bytes.NewReader(data), Limits{MaxFileBytes: gig / 2}); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "MaxFileBytes") {
		t.Errorf("file over MaxFileBytes: %v, want ErrTooLarge naming MaxFileBytes", err)
	}
}

func TestWindowCap(t *testing.T) {
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, zstd.WithWindowSize(8<<20), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	enc.Write(mkTar(t, regEnt("a", strings.Repeat("abc", 1<<20))))
	enc.Close()
	if _, err := Inspect(bytes.NewReader(buf.Bytes()), Limits{}); err != nil {
		t.Fatalf("8 MiB window under the default cap: %v", err)
	}
	_, err = Inspect(bytes.NewReader(buf.Bytes()), Limits{MaxWindow: 1 << 20})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "MaxWindow") {
		t.Errorf("8 MiB window over a 1 MiB cap: %v, want ErrTooLarge naming MaxWindow", err)
	}
}

func TestBrokenStreams(t *testing.T) {
	src := t.TempDir()
	mkTree(t, src, "a="+strings.Repeat("some content ", 50_000), "b=more")
	_, good := writeBundle(t, src)
	plain := decompress(t, good)

	corrupt := slices.Clone(good)
	for i := len(corrupt) / 3; i < len(corrupt)/3+64; i++ {
		corrupt[i] ^= 0x55
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty stream"},
		{"truncated zstd", good[:len(good)/2], "truncated"},
		{"truncated zstd end", good[:len(good)-3], ""},
		{"corrupt zstd", corrupt, ""},
		{"not zstd", plain, "not a zstd stream"},
		{"tar cut mid-file", compress(plain[:len(plain)/2]), "truncated"},
		{"tar cut at an entry", compress(plain[:len(plain)-1024]), "no end-of-archive marker"},
		{"tar with one zero block", compress(plain[:len(plain)-512]), "no end-of-archive marker"},
		{"tar header garbage", compress(bytes.Repeat([]byte("garbage!"), 128)), "corrupt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ierr := Inspect(bytes.NewReader(tc.data), Limits{})
			_, xerr := Extract(bytes.NewReader(tc.data), t.TempDir(), Limits{})
			if ierr == nil || xerr == nil {
				t.Fatalf("Inspect: %v, Extract: %v; want errors", ierr, xerr)
			}
			t.Log(xerr)
			if ierr.Error() != xerr.Error() {
				t.Errorf("Inspect and Extract disagree:\n%v\n%v", ierr, xerr)
			}
			if !strings.Contains(ierr.Error(), tc.want) || !strings.HasPrefix(ierr.Error(), "read bundle: ") {
				t.Errorf("error %q, want it to mention %q", ierr, tc.want)
			}
		})
	}
}

// fullDisk is a sink whose writes fail like on a full disk.
type fullDisk struct{ discard }

func (fullDisk) file(string, fs.FileMode, io.Reader, []byte) error {
	return &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}
}

func TestWriteErrorsKeepErrno(t *testing.T) {
	data := compress(mkTar(t, regEnt("a", "x")))
	_, err := read(bytes.NewReader(data), Limits{}, fullDisk{})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("error %v, want ENOSPC wrapped", err)
	}
	// And through os.Root: a file in the way of a directory.
	dst := t.TempDir()
	os.WriteFile(filepath.Join(dst, "a"), nil, 0o644)
	_, err = Extract(bytes.NewReader(compress(mkTar(t, dirEnt("a/")))), dst, Limits{})
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("error %v, want fs.ErrExist wrapped", err)
	}
}

func TestExtractMissingDir(t *testing.T) {
	data := compress(mkTar(t, regEnt("a", "x")))
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := Extract(bytes.NewReader(data), missing, Limits{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v, want fs.ErrNotExist", err)
	}
}

// TestPaddedStream: a valid bundle followed by skippable zstd frames (which
// add nothing to the tar) is refused once the compressed stream passes
// MaxBundleBytes, so that padding cannot fill the disk; within the cap it
// is accepted with the same ID.
func TestPaddedStream(t *testing.T) {
	dir := t.TempDir()
	mkTree(t, dir, "a.txt=hello")
	id, data := writeBundle(t, dir)
	lim := Limits{MaxTarBytes: 1 << 20}
	skippable := func(n int) []byte {
		f := make([]byte, 8+n)
		copy(f, []byte{0x50, 0x2A, 0x4D, 0x18}) // magic 0x184D2A50, little-endian
		f[4], f[5], f[6], f[7] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
		return f
	}
	small := append(append([]byte{}, data...), skippable(64<<10)...)
	if info, err := Inspect(bytes.NewReader(small), lim); err != nil || info.ID != id {
		t.Errorf("a little padding: %v, %s (want %s)", err, info.ID, id)
	}
	big := append([]byte{}, data...)
	for int64(len(big)) <= lim.MaxBundleBytes() {
		big = append(big, skippable(1<<20)...)
	}
	_, err := Inspect(bytes.NewReader(big), lim)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "MaxBundleBytes") {
		t.Errorf("padding past the cap: %v, want ErrTooLarge naming MaxBundleBytes", err)
	}
}
