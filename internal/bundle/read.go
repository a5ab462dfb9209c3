package bundle

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Inspect reads a whole bundle without writing anything, checks every entry
// as Extract would (same rules, same errors), and returns its Info.
func Inspect(r io.Reader, lim Limits) (Info, error) {
	return read(r, lim, discard{})
}

// sink receives the entries of a bundle once they have passed the rules.
// Names are relative, '/'-separated and clean.
type sink interface {
	mkdir(name string) error
	symlink(name, target string) error
	// file creates name with mode and copies r to it with buf.
	file(name string, mode fs.FileMode, r io.Reader, buf []byte) error
}

// discard is the sink of Inspect.
type discard struct{}

func (discard) mkdir(string) error           { return nil }
func (discard) symlink(string, string) error { return nil }
func (discard) file(_ string, _ fs.FileMode, r io.Reader, buf []byte) error {
	_, err := io.CopyBuffer(io.Discard, r, buf)
	return err
}

// read decompresses and checks a bundle, hands its entries to s and returns
// its Info. The rules are listed on UnsafeEntryError.
func read(r io.Reader, lim Limits, s sink) (Info, error) {
	lim = lim.orDefault()
	// The decoder reports a failed read as a truncated stream: cr says
	// whether it was the cap.
	cr := newCapReader(r, lim.MaxBundleBytes())
	dec, err := newDecoder(cr, lim)
	if err != nil {
		return Info{}, fmt.Errorf("read bundle: zstd decoder: %w", err)
	}
	defer dec.Close()
	info, err := readTar(dec, lim, s)
	return info, cr.explain(err)
}

// newDecoder is the zstd reader of bundles and deltas, within lim's window
// and memory cap.
func newDecoder(r io.Reader, lim Limits) (*zstd.Decoder, error) {
	return zstd.NewReader(bufio.NewReaderSize(r, 256<<10),
		zstd.WithDecoderMaxWindow(lim.MaxWindow), zstd.WithDecoderMaxMemory(lim.MaxWindow))
}

// newMeter hashes and counts the decompressed stream r, within lim.
func newMeter(r io.Reader, lim Limits) *meter {
	return &meter{r: r, sum: sha256.New(), max: lim.MaxTarBytes, window: lim.MaxWindow}
}

// InspectTar is Inspect of a tar stream that is not compressed.
func InspectTar(r io.Reader, lim Limits) (Info, error) {
	return readTar(r, lim.orDefault(), discard{})
}

// readTar is read of the decompressed stream.
func readTar(r io.Reader, lim Limits, s sink) (Info, error) {
	m := newMeter(r, lim)
	rd := reader{
		lim:   lim,
		sink:  s,
		tr:    tar.NewReader(m),
		m:     m,
		kinds: map[string]kind{"": kindDir},
		links: linkSet{},
		buf:   make([]byte, copyBufSize),
	}
	if err := rd.entries(); err != nil {
		return rd.info, err
	}
	// Whatever follows the trailer is part of the stream, and of its ID.
	if _, err := io.CopyBuffer(io.Discard, m, rd.buf); err != nil {
		return rd.info, m.readError(err)
	}
	rd.info.ID = ID(m.sum.Sum(nil))
	rd.info.TarBytes = m.n
	if err := rd.symlinks(); err != nil {
		return rd.info, err
	}
	return rd.info, nil
}

// reader holds the state of one read.
type reader struct {
	lim   Limits
	sink  sink
	tr    *tar.Reader
	m     *meter
	kinds map[string]kind // every path so far ("" is the top directory)
	links linkSet
	// linkOrder lists the symlinks in bundle order, to check and create
	// them in a stable order at the end.
	linkOrder []string
	buf       []byte
	info      Info
}

// entries reads the tar up to its end-of-archive trailer.
func (rd *reader) entries() error {
	for {
		before := rd.m.n
		h, err := rd.tr.Next()
		if errors.Is(err, io.EOF) {
			// Next has read the previous entry's padding (< 512 bytes), then
			// the two zero blocks of the trailer, or zero or one block up to
			// the end of the stream.
			switch {
			case rd.m.n == 0:
				return fmt.Errorf("read bundle: empty stream")
			case rd.m.n-before < 1024:
				return fmt.Errorf("read bundle: truncated tar stream: no end-of-archive marker")
			}
			return nil
		}
		if err != nil {
			return rd.m.readError(err)
		}
		if rd.info.Entries++; rd.info.Entries > rd.lim.MaxEntries {
			return tooLarge("more than %d entries (MaxEntries)", rd.lim.MaxEntries)
		}
		if err := rd.entry(h); err != nil {
			return err
		}
	}
}

// symlinks checks every symlink again, now that the tree is complete (a
// later link can make an earlier one lead outside), and only then creates
// them: no link that leads outside ever exists, even for a moment.
func (rd *reader) symlinks() error {
	for _, name := range rd.linkOrder {
		if reason := rd.links.escape(name); reason != "" {
			return unsafeEntry(name, "symlink to %q: %s", rd.links[name], reason)
		}
	}
	for _, name := range rd.linkOrder {
		if err := rd.sink.symlink(name, rd.links[name]); err != nil {
			return err
		}
	}
	return nil
}

// entry checks one entry and hands it to the sink.
func (rd *reader) entry(h *tar.Header) error {
	if h.Typeflag == tar.TypeXGlobalHeader {
		return nil // PAX records for the whole archive, e.g. git archive's commit ID
	}
	name, err := entryName(h)
	if err != nil {
		return err
	}
	k, err := entryKind(h)
	if err != nil {
		return err
	}
	if name == "" {
		return nil // the top directory: the caller made it
	}
	if err := rd.place(h.Name, name, k); err != nil {
		return err
	}
	switch k {
	case kindDir:
		return rd.sink.mkdir(name)
	case kindSymlink:
		if reason := linkReason(h.Linkname); reason != "" {
			return unsafeEntry(h.Name, "symlink to %q: %s", h.Linkname, reason)
		}
		rd.links[name] = h.Linkname
		rd.linkOrder = append(rd.linkOrder, name)
		if reason := rd.links.escape(name); reason != "" {
			return unsafeEntry(h.Name, "symlink to %q: %s", h.Linkname, reason)
		}
		return nil // created by symlinks, at the end
	}
	return rd.file(h, name)
}

// entryKind returns the kind of path an entry makes, or why it is refused.
func entryKind(h *tar.Header) (kind, error) {
	switch h.Typeflag {
	case tar.TypeDir:
		return kindDir, nil
	case tar.TypeReg:
		for key := range h.PAXRecords {
			if strings.HasPrefix(key, "GNU.sparse.") {
				// Holes would not count against MaxTarBytes.
				return kindNone, unsafeEntry(h.Name, "sparse files are not allowed")
			}
		}
		return kindFile, nil
	case tar.TypeSymlink:
		return kindSymlink, nil
	case tar.TypeLink:
		return kindNone, unsafeEntry(h.Name, "hard links are not allowed")
	case tar.TypeChar, tar.TypeBlock:
		return kindNone, unsafeEntry(h.Name, "device files are not allowed")
	case tar.TypeFifo:
		return kindNone, unsafeEntry(h.Name, "FIFOs are not allowed")
	}
	return kindNone, unsafeEntry(h.Name, "unsupported entry type %q", h.Typeflag)
}

// file hands a regular file to the sink.
func (rd *reader) file(h *tar.Header, name string) error {
	if h.Size > rd.lim.MaxFileBytes {
		return tooLarge("file %q is %d bytes, over the %d-byte cap (MaxFileBytes)", h.Name, h.Size, rd.lim.MaxFileBytes)
	}
	rd.info.ContentBytes += h.Size
	mode := fs.FileMode(0o644)
	if h.Mode&0o111 != 0 {
		mode = 0o755
	}
	src := &errReader{r: rd.tr}
	if err := rd.sink.file(name, mode, src, rd.buf); err != nil {
		if src.err != nil { // the bundle is at fault, not the disk
			return rd.m.readError(src.err)
		}
		return err
	}
	return nil
}

// place records name, refusing duplicates and entries whose parent is not
// a directory seen earlier (which includes writing through a symlink).
func (rd *reader) place(raw, name string, k kind) error {
	if _, dup := rd.kinds[name]; dup {
		return unsafeEntry(raw, "duplicate of an earlier entry")
	}
	parent := path.Dir(name)
	if parent == "." {
		parent = ""
	}
	switch rd.kinds[parent] {
	case kindDir:
	case kindSymlink:
		return unsafeEntry(raw, "its parent %q is a symlink: writing through symlinks is not allowed", parent)
	case kindFile:
		return unsafeEntry(raw, "its parent %q is a regular file", parent)
	default:
		return unsafeEntry(raw, "its parent directory %q does not come before it in the bundle", parent)
	}
	rd.kinds[name] = k
	return nil
}

// errReader remembers the error of its reader, to tell read errors from
// write errors after a copy.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// meter hashes and counts the decompressed stream, and fails with
// ErrTooLarge past max bytes.
type meter struct {
	r      io.Reader
	sum    hash.Hash
	n      int64
	max    int64
	window uint64
}

func (m *meter) Read(p []byte) (int, error) {
	// Read at most one byte past the cap: enough to tell it was exceeded.
	if room := m.max - m.n + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := m.r.Read(p)
	m.sum.Write(p[:n])
	m.n += int64(n)
	if m.n > m.max {
		return 0, tooLarge("decompressed tar stream over %d bytes (MaxTarBytes)", m.max)
	}
	return n, err
}

// readError explains an error met while reading the decompressed stream.
func (m *meter) readError(err error) error {
	switch {
	case errors.Is(err, ErrTooLarge):
		return err
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return tooLarge("zstd window over %d bytes (MaxWindow): %v", m.window, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("read bundle: truncated stream after %d decompressed bytes: %w", m.n, err)
	case errors.Is(err, zstd.ErrMagicMismatch):
		return fmt.Errorf("read bundle: not a zstd stream: %w", err)
	case errors.Is(err, tar.ErrHeader):
		return fmt.Errorf("read bundle: corrupt tar stream after %d decompressed bytes: %w", m.n, err)
	}
	return fmt.Errorf("read bundle: corrupt stream after %d decompressed bytes: %w", m.n, err)
}
