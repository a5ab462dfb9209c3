package bundle

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/klauspost/compress/zstd"
)

// WriteOptions tune Write. The zero value is ready to use.
type WriteOptions struct {
	Level zstd.EncoderLevel // 0 means zstd.SpeedDefault
	// Progress, if set, is called now and then while writing (at most every
	// 100 ms, and once at the end) with the regular files and file bytes
	// written so far. It runs on Write's goroutine.
	Progress func(files int, bytes int64)
}

const (
	copyBufSize     = 1 << 20
	outBufSize      = 1 << 20
	progressEvery   = 100 * time.Millisecond
	maxEncoderProcs = 16 // beyond this, more goroutines mostly add memory
)

// epoch is the time of every entry: time.Time{} cannot be written in a
// USTAR header, the Unix epoch can.
var epoch = time.Unix(0, 0)

// Write walks dir, writes the canonical tar compressed with zstd to w, and
// returns the version ID. See Files for what goes in and the package
// documentation for the format. Nothing is written when the walk finds an
// error (a symlink leading outside dir, a socket...). Memory does not grow
// with the size of the files, only with the number of paths.
func Write(dir string, w io.Writer, opt WriteOptions) (id string, err error) {
	ents, err := collect(dir)
	if err != nil {
		return "", err
	}
	level := opt.Level
	if level == 0 {
		level = zstd.SpeedDefault
	}
	bw := bufio.NewWriterSize(w, outBufSize)
	enc, err := zstd.NewWriter(bw, encoderOptions(level)...)
	if err != nil {
		return "", fmt.Errorf("bundle: zstd encoder: %w", err)
	}
	defer enc.Close() // releases the goroutines after an error; a second Close is harmless

	sum := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(sum, enc))
	tp := tarWriter{tw: tw, root: dir, buf: make([]byte, copyBufSize), progress: opt.Progress}
	for i := range ents {
		if err := tp.add(&ents[i]); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("bundle: write: %w", err)
	}
	if err := enc.Close(); err != nil {
		return "", fmt.Errorf("bundle: write: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return "", fmt.Errorf("bundle: write: %w", err)
	}
	if tp.progress != nil {
		tp.progress(tp.files, tp.bytes)
	}
	return ID(sum.Sum(nil)), nil
}

// encoderOptions compresses in parallel like `zstd -T0`: the input is cut in
// jobs of four windows, compressed by up to one goroutine per CPU. Up to
// SpeedDefault the window is 1 MiB (zstd -3 uses 2 MiB): on BenchmarkWrite's
// tree that was about 20% faster than the 8 MiB default, for bundles 0.5%
// larger, and more, smaller jobs keep more cores busy. Memory stays a few
// MiB per goroutine whatever the size of the tree.
func encoderOptions(level zstd.EncoderLevel) []zstd.EOption {
	opts := []zstd.EOption{
		zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(min(runtime.GOMAXPROCS(0), maxEncoderProcs)),
		zstd.WithConcurrentBlocks(true),
	}
	if level <= zstd.SpeedDefault {
		opts = append(opts, zstd.WithWindowSize(1<<20))
	}
	return opts
}

// tarWriter writes the entries of one bundle.
type tarWriter struct {
	tw       *tar.Writer
	root     string
	buf      []byte
	hdr      tar.Header
	files    int
	bytes    int64
	progress func(int, int64)
	last     time.Time
	// manifest, if set, gets an entry for each entry written, with the
	// digest of each file's content (Scan).
	manifest *Manifest
	fileSum  hash.Hash
}

// canonicalHeader returns the header the canonical tar gives an entry
// (see the package documentation). AccessTime and ChangeTime stay zero:
// archive/tar then writes no PAX time records for them.
func canonicalHeader(name string, k kind, exec bool, size int64, target string) tar.Header {
	h := tar.Header{Name: name, ModTime: epoch, Format: tar.FormatPAX}
	switch k {
	case kindDir:
		h.Typeflag, h.Mode = tar.TypeDir, 0o755
	case kindSymlink:
		h.Typeflag, h.Mode, h.Linkname = tar.TypeSymlink, 0o777, target
	default:
		h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, size
		if exec {
			h.Mode = 0o755
		}
	}
	return h
}

// add writes one entry with its canonical header.
func (t *tarWriter) add(e *entry) error {
	if e.kind == kindFile {
		return t.addFile(e)
	}
	t.hdr = canonicalHeader(e.name, e.kind, false, 0, e.target)
	if t.manifest != nil {
		t.manifest.Entries = append(t.manifest.Entries, ManifestEntry{Name: e.name, Type: typeLetter(e.kind), Target: e.target})
	}
	return t.writeHeader()
}

func (t *tarWriter) writeHeader() error {
	if err := t.tw.WriteHeader(&t.hdr); err != nil {
		return fmt.Errorf("bundle: write %s: %w", t.hdr.Name, err)
	}
	return nil
}

// addFile writes a regular file, checking it does not change size meanwhile.
func (t *tarWriter) addFile(e *entry) error {
	osPath := filepath.Join(t.root, filepath.FromSlash(e.name))
	f, err := os.Open(osPath)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("bundle: %s changed while it was being bundled (no longer a regular file); run again", osPath)
	}
	exec := st.Mode()&0o111 != 0
	t.hdr = canonicalHeader(e.name, kindFile, exec, st.Size(), "")
	if err := t.writeHeader(); err != nil {
		return err
	}
	if t.manifest != nil {
		t.fileSum.Reset()
	}
	for left := st.Size(); left > 0; {
		n, err := f.Read(t.buf[:min(int64(len(t.buf)), left)])
		if n > 0 {
			if _, werr := t.tw.Write(t.buf[:n]); werr != nil {
				return fmt.Errorf("bundle: write: %w", werr)
			}
			if t.manifest != nil {
				t.fileSum.Write(t.buf[:n])
			}
			left -= int64(n)
			t.bytes += int64(n)
		}
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("bundle: %s shrank while it was being bundled; run again", osPath)
		}
		if err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
	}
	if n, _ := f.Read(t.buf[:1]); n > 0 {
		return fmt.Errorf("bundle: %s grew while it was being bundled; run again", osPath)
	}
	if t.manifest != nil {
		t.manifest.Entries = append(t.manifest.Entries, ManifestEntry{Name: e.name, Type: "f", Exec: exec,
			Size: st.Size(), Digest: digest(t.fileSum)})
	}
	t.files++
	if t.progress != nil {
		if now := time.Now(); now.Sub(t.last) >= progressEvery {
			t.last = now
			t.progress(t.files, t.bytes)
		}
	}
	return nil
}

// Hash returns the version ID of dir's bundle without compressing it: the
// tree walk and the SHA-256 of the canonical tar, several times faster
// than Write. jepush asks the server whether it has the version before it
// spends time compressing.
func Hash(dir string, opt WriteOptions) (id string, err error) {
	m, err := scan(dir, opt, false)
	if err != nil {
		return "", err
	}
	return m.Version, nil
}

// Scan is Hash that also lists the tree as a Manifest, with a digest of
// every file: what jepush compares with a server's manifest to send only
// what changed (WriteDelta). It costs a second hash of the content.
func Scan(dir string, opt WriteOptions) (*Manifest, error) {
	return scan(dir, opt, true)
}

func scan(dir string, opt WriteOptions, digests bool) (*Manifest, error) {
	ents, err := collect(dir)
	if err != nil {
		return nil, err
	}
	return hashEntries(dir, ents, opt, digests)
}

// hashEntries hashes the canonical tar of ents, read from dir.
func hashEntries(dir string, ents []entry, opt WriteOptions, digests bool) (*Manifest, error) {
	sum := sha256.New()
	tw := tar.NewWriter(sum)
	tp := tarWriter{tw: tw, root: dir, buf: make([]byte, copyBufSize), progress: opt.Progress}
	m := &Manifest{}
	if digests {
		tp.manifest, tp.fileSum = m, sha256.New()
		m.Entries = make([]ManifestEntry, 0, len(ents))
	}
	for i := range ents {
		if err := tp.add(&ents[i]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("bundle: write: %w", err)
	}
	if tp.progress != nil {
		tp.progress(tp.files, tp.bytes)
	}
	m.Version = ID(sum.Sum(nil))
	return m, nil
}
