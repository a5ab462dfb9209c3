package bundle

// Deltas: a new version sent as its changes against a version the server
// already has.
//
// The server describes the bundle it runs with a Manifest (ReadManifest):
// every entry of its canonical tar, with a digest of each file. jepush
// compares that with its own tree (Scan) and writes a delta (WriteDelta):
// one JSON line naming both versions and the paths that are gone, then a
// tar of the entries that are new or differ, in bundle order, all compressed
// with zstd. The server merges the old bundle with the delta, entry by
// entry, into the canonical tar of the new version (ApplyDelta), and checks
// it like any upload: its SHA-256 must give the new version's ID, so a
// wrong digest, a changed base or a bug in either side can only make the
// delta refused, never a wrong release.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Manifest lists the entries of a version's canonical tar, in bundle order.
type Manifest struct {
	Version string          `json:"version"`
	Entries []ManifestEntry `json:"entries"`
}

// ManifestEntry is one entry of a Manifest.
type ManifestEntry struct {
	Name   string `json:"n"` // as in the tar: directories end in "/"
	Type   string `json:"t"` // "d", "f" or "l"
	Exec   bool   `json:"x,omitempty"`
	Size   int64  `json:"s,omitempty"`
	Target string `json:"l,omitempty"` // a symlink's target
	// Digest is the first 16 bytes of the SHA-256 of a file's content, in
	// hex. It only decides what is sent: the new bundle's own hash is what
	// is checked.
	Digest string `json:"h,omitempty"`
}

func typeLetter(k kind) string {
	switch k {
	case kindDir:
		return "d"
	case kindSymlink:
		return "l"
	}
	return "f"
}

func digest(h hash.Hash) string {
	var b [sha256.Size]byte
	return hex.EncodeToString(h.Sum(b[:0])[:16])
}

// DeltaStats says what a delta holds.
type DeltaStats struct {
	Entries      int   // entries sent (new or changed)
	ContentBytes int64 // bytes of file content sent, before compression
	Removed      int   // entries of the base that are gone
	Unchanged    int   // entries taken from the base
	Copies       int   // files sent as copies of base files (format 2)
	Patches      int   // files sent as patches against their previous version (format 2)
	PatchBytes   int64 // the patches' bytes (compressed), in ContentBytes' stead
	TreeCopies   int   // directories sent as copies of a base directory (format 2; their files count in Copies)
}

// Diff compares a tree with the server's base: the entries to send, the
// names that are gone, and how much content that is.
func Diff(tree, base *Manifest) (send []ManifestEntry, removed []string, st DeltaStats) {
	old := make(map[string]ManifestEntry, len(base.Entries))
	for _, e := range base.Entries {
		old[e.Name] = e
	}
	for _, e := range tree.Entries {
		if o, ok := old[e.Name]; ok {
			delete(old, e.Name)
			if o == e { // the same bytes in the canonical tar
				st.Unchanged++
				continue
			}
		}
		send = append(send, e)
		st.ContentBytes += e.Size
	}
	for _, e := range base.Entries {
		if _, gone := old[e.Name]; gone {
			removed = append(removed, e.Name)
		}
	}
	st.Entries, st.Removed = len(send), len(removed)
	return send, removed, st
}

// deltaHeader is the first line of a delta.
type deltaHeader struct {
	Base    string   `json:"base"`
	Version string   `json:"version"`
	Removed []string `json:"removed,omitempty"`
	// Format is 2 for a delta with copies and patches (patch.go); absent
	// before.
	Format int `json:"format,omitempty"`
	// Sources are the base files that copies and patches from another
	// path use: the server reads them before the merge.
	Sources []string `json:"sources,omitempty"`
	// GoneDirs are directories of the base that are gone with all they
	// hold (format 2): a renamed directory costs one name, not one per
	// entry.
	GoneDirs []string `json:"gone_dirs,omitempty"`
	// TreeSources are directories of the base whose whole subtree a
	// tree copy (an entry of type typeTreeCopy) writes under a new name: a
	// renamed directory costs two names. The server reads them before the
	// merge.
	TreeSources []string `json:"tree_sources,omitempty"`
}

// collapseRemoved replaces, in removed (names of base in bundle order), the
// directories that are gone with everything under them by the directory
// alone.
func collapseRemoved(base *Manifest, removed []string) (names, dirs []string) {
	set := make(map[string]bool, len(removed))
	for _, n := range removed {
		set[n] = true
	}
	ents := base.Entries
	for i := 0; i < len(ents); {
		e := ents[i]
		if !set[e.Name] {
			i++
			continue
		}
		if e.Type == "d" {
			j, all := i+1, true
			for ; j < len(ents) && strings.HasPrefix(ents[j].Name, e.Name); j++ {
				all = all && set[ents[j].Name]
			}
			if all {
				dirs = append(dirs, e.Name)
				i = j
				continue
			}
		}
		names = append(names, e.Name)
		i++
	}
	return names, dirs
}

// treeCopiesSet is the set of the new directories of tree copies.
func treeCopiesSet(m map[string]string) map[string]bool {
	set := make(map[string]bool, len(m))
	for n := range m {
		set[n] = true
	}
	return set
}

// underGone reports whether name is in one of the directories gone.
func underGone(name string, gone map[string]bool) bool {
	for i := len(name) - 2; i >= 0; i-- {
		if name[i] == '/' && gone[name[:i+1]] {
			return true
		}
	}
	return false
}

// DeltaOptions tune WriteDeltaWith.
type DeltaOptions struct {
	// Format 2 sends copies and patches (what agents that state
	// "jeagent-delta: 2" read); 0 or 1 sends changed files whole.
	Format int
	// Old holds the content of base files, by name (the client's copy of
	// the base): the dictionaries of patches. Nil: no patches.
	Old map[string][]byte
}

// maxDeltaHeader caps a delta's first line.
const maxDeltaHeader = 64 << 20

// WriteDelta writes to w the delta that turns base into tree, the Scan of
// dir. It reads again the files it sends and fails if one changed since the
// Scan.
func WriteDelta(dir string, tree, base *Manifest, w io.Writer) (DeltaStats, error) {
	return WriteDeltaWith(dir, tree, base, w, DeltaOptions{})
}

// WriteDeltaWith is WriteDelta in the format of o.
func WriteDeltaWith(dir string, tree, base *Manifest, w io.Writer, o DeltaOptions) (DeltaStats, error) {
	send, removed, st := Diff(tree, base)
	hd := deltaHeader{Base: base.Version, Version: tree.Version, Removed: removed}
	var plan DeltaPlan
	var pe *patchEncoder
	var treeCopies map[string]string
	level := zstd.SpeedDefault
	if o.Format >= 2 {
		hd.Format = DeltaFormat
		hd.Removed, hd.GoneDirs = collapseRemoved(base, removed)
		plan = PlanDelta(tree, base)
		content := st.ContentBytes
		for _, e := range send {
			if _, ok := plan.Copies[e.Name]; ok {
				content -= e.Size
			}
		}
		if content < 1<<20 {
			level = zstd.SpeedBestCompression // a small delta: bytes matter more than time
		}
		treeCopies = findTreeCopies(tree, base, hd.GoneDirs)
		seen, under := map[string]bool{}, treeCopiesSet(treeCopies)
		for name, src := range plan.Copies {
			if src != name && !seen[src] && !underGone(name, under) {
				seen[src] = true
				hd.Sources = append(hd.Sources, src)
			}
		}
		sort.Strings(hd.Sources)
		for _, d := range treeCopies {
			hd.TreeSources = append(hd.TreeSources, d)
		}
		sort.Strings(hd.TreeSources)
		hd.TreeSources = slices.Compact(hd.TreeSources)
		var err error
		if pe, err = newPatchEncoder(); err != nil {
			return st, fmt.Errorf("delta: %w", err)
		}
	}
	bw := bufio.NewWriterSize(w, outBufSize)
	enc, err := zstd.NewWriter(bw, encoderOptions(level)...)
	if err != nil {
		return st, fmt.Errorf("delta: zstd encoder: %w", err)
	}
	defer enc.Close()
	line, err := json.Marshal(hd)
	if err != nil {
		return st, err
	}
	if _, err := enc.Write(append(line, '\n')); err != nil {
		return st, fmt.Errorf("delta: write: %w", err)
	}
	tw := tar.NewWriter(enc)
	buf := make([]byte, copyBufSize)
	sum := sha256.New()
	skip := ""
	for _, e := range send {
		if skip != "" && strings.HasPrefix(e.Name, skip) {
			if e.Type == "f" {
				st.Copies++
				st.ContentBytes -= e.Size
			}
			continue
		}
		if from, ok := treeCopies[e.Name]; ok {
			h := tar.Header{Name: e.Name, Typeflag: typeTreeCopy, Linkname: from, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}
			if err := tw.WriteHeader(&h); err != nil {
				return st, fmt.Errorf("delta: write %s: %w", e.Name, err)
			}
			st.TreeCopies++
			skip = e.Name
			continue
		}
		h := canonicalHeader(e.Name, kindOf(e.Type), e.Exec, e.Size, e.Target)
		path := filepath.Join(dir, filepath.FromSlash(e.Name))
		var content []byte
		if e.Type == "f" && hd.Format >= 2 {
			if src, ok := plan.Copies[e.Name]; ok {
				h.Size, h.PAXRecords = 0, map[string]string{paxEnc: "copy", paxFrom: src, paxSize: strconv.FormatInt(e.Size, 10)}
				st.Copies++
				st.ContentBytes -= e.Size
			} else if old, ok := o.Old[plan.Patchable[e.Name]]; ok {
				var err error
				if content, err = readFile(path, e, sum); err != nil {
					return st, err
				}
				p, err := pe.patch(old, content)
				if err != nil {
					return st, fmt.Errorf("delta: %s: %w", path, err)
				}
				if p != nil {
					h.Size, h.PAXRecords = int64(len(p)), map[string]string{paxEnc: "zstd", paxFrom: e.Name, paxSize: strconv.FormatInt(e.Size, 10)}
					st.Patches++
					st.ContentBytes += int64(len(p)) - e.Size
					st.PatchBytes += int64(len(p))
					content = p
				}
			}
		}
		if err := tw.WriteHeader(&h); err != nil {
			return st, fmt.Errorf("delta: write %s: %w", e.Name, err)
		}
		if e.Type != "f" || h.PAXRecords[paxEnc] == "copy" {
			continue
		}
		if content != nil {
			if _, err := tw.Write(content); err != nil {
				return st, fmt.Errorf("delta: write %s: %w", e.Name, err)
			}
			continue
		}
		if err := copyFile(tw, path, e, sum, buf); err != nil {
			return st, err
		}
	}
	if err := tw.Close(); err != nil {
		return st, fmt.Errorf("delta: write: %w", err)
	}
	if err := enc.Close(); err != nil {
		return st, fmt.Errorf("delta: write: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("delta: write: %w", err)
	}
	return st, nil
}

// copyFile writes e's content from path to w, checking it is what Scan saw.
func copyFile(w io.Writer, path string, e ManifestEntry, sum hash.Hash, buf []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("delta: %w", err)
	}
	defer f.Close()
	sum.Reset()
	n, err := io.CopyBuffer(io.MultiWriter(w, sum), io.LimitReader(f, e.Size), buf)
	if err != nil {
		return fmt.Errorf("delta: %s: %w", path, err)
	}
	if n != e.Size || digest(sum) != e.Digest {
		return fmt.Errorf("delta: %s changed while jepush was reading it; push again", path)
	}
	return nil
}

// readFile reads e's content from path, checking it is what Scan saw.
func readFile(path string, e ManifestEntry, sum hash.Hash) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(int(e.Size))
	if err := copyFile(&b, path, e, sum, make([]byte, 32<<10)); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func kindOf(letter string) kind {
	switch letter {
	case "d":
		return kindDir
	case "l":
		return kindSymlink
	}
	return kindFile
}

// ReadManifest reads a bundle (compressed) and returns its Manifest.
// Version is the ID of what was read.
func ReadManifest(r io.Reader, lim Limits) (*Manifest, error) {
	m := &Manifest{}
	sum := sha256.New()
	buf := make([]byte, copyBufSize)
	id, err := eachEntry(r, lim, func(h *tar.Header, body io.Reader) error {
		e := ManifestEntry{Name: h.Name, Type: "f"}
		switch h.Typeflag {
		case tar.TypeDir:
			e.Type = "d"
		case tar.TypeSymlink:
			e.Type, e.Target = "l", h.Linkname
		default:
			e.Exec, e.Size = h.Mode&0o111 != 0, h.Size
			sum.Reset()
			if _, err := io.CopyBuffer(sum, body, buf); err != nil {
				return err
			}
			e.Digest = digest(sum)
		}
		m.Entries = append(m.Entries, e)
		return nil
	})
	m.Version = id
	return m, err
}

// eachEntry calls fn for the directories, files and symlinks of a bundle
// in their order and returns the bundle's ID. It applies the Limits but not
// the other rules: it reads bundles the server checked when they came.
func eachEntry(r io.Reader, lim Limits, fn func(h *tar.Header, body io.Reader) error) (string, error) {
	lim = lim.orDefault()
	dec, err := newDecoder(r, lim)
	if err != nil {
		return "", fmt.Errorf("read bundle: zstd decoder: %w", err)
	}
	defer dec.Close()
	m := newMeter(dec, lim)
	tr := tar.NewReader(m)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", m.readError(err)
		}
		switch h.Typeflag {
		case tar.TypeDir, tar.TypeReg, tar.TypeSymlink:
		default:
			continue
		}
		if err := fn(h, tr); err != nil {
			return "", err
		}
	}
	if _, err := io.Copy(io.Discard, m); err != nil {
		return "", m.readError(err)
	}
	return ID(m.sum.Sum(nil)), nil
}

// WriteManifest writes m compressed with zstd; DecodeManifest reads it.
func WriteManifest(w io.Writer, m *Manifest) error {
	enc, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return err
	}
	if err := json.NewEncoder(enc).Encode(m); err != nil {
		enc.Close()
		return err
	}
	return enc.Close()
}

// DecodeManifest reads what WriteManifest wrote, at most max decompressed
// bytes.
func DecodeManifest(r io.Reader, max int64) (*Manifest, error) {
	dec, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	var m Manifest
	lr := &io.LimitedReader{R: dec, N: max + 1}
	if err := json.NewDecoder(lr).Decode(&m); err != nil {
		if lr.N <= 0 {
			return nil, fmt.Errorf("manifest over %d bytes", max)
		}
		return nil, fmt.Errorf("manifest: %w", err)
	}
	for i := 1; i < len(m.Entries); i++ {
		if m.Entries[i-1].Name >= m.Entries[i].Name {
			return nil, fmt.Errorf("manifest: %q comes after %q: not in bundle order", m.Entries[i].Name, m.Entries[i-1].Name)
		}
	}
	return &m, nil
}

// ApplyDelta reads the base bundle and a delta against it, and writes to w
// the new version's canonical tar, not compressed. It returns the delta's
// header versions; the caller checks the result (InspectTar) and its ID.
// base's own ID must be the delta's base. A format-2 delta that copies
// files from other paths reads base twice.
func ApplyDelta(base io.ReadSeeker, delta io.Reader, w io.Writer, lim Limits) (baseID, version string, err error) {
	lim = lim.orDefault()
	dec, err := newDecoder(delta, lim)
	if err != nil {
		return "", "", fmt.Errorf("delta: zstd decoder: %w", err)
	}
	defer dec.Close()
	m := newMeter(dec, lim)
	br := bufio.NewReaderSize(m, 256<<10)
	line, err := readLine(br, maxDeltaHeader)
	if err != nil {
		return "", "", fmt.Errorf("delta: first line: %w", err)
	}
	var hd deltaHeader
	if err := json.Unmarshal(line, &hd); err != nil {
		return "", "", fmt.Errorf("delta: first line: %w", err)
	}
	gone := make(map[string]bool, len(hd.Removed))
	for _, n := range hd.Removed {
		gone[n] = true
	}
	if hd.Format > DeltaFormat {
		return hd.Base, hd.Version, fmt.Errorf("delta: format %d, and this jeagent reads up to format %d: upgrade it", hd.Format, DeltaFormat)
	}
	if (len(hd.Sources) > 0 || len(hd.GoneDirs) > 0 || len(hd.TreeSources) > 0) && hd.Format < 2 {
		return hd.Base, hd.Version, fmt.Errorf("delta: sources or gone directories in a delta of format %d", hd.Format)
	}
	goneDirs := make(map[string]bool, len(hd.GoneDirs))
	for _, n := range hd.GoneDirs {
		if !strings.HasSuffix(n, "/") {
			return hd.Base, hd.Version, fmt.Errorf("delta: gone directory %q does not end in /", n)
		}
		goneDirs[n] = true
		gone[n] = true
	}
	var sources map[string][]byte
	var trees map[string][]treeEntry
	if len(hd.Sources) > 0 || len(hd.TreeSources) > 0 {
		want := make(map[string]bool, len(hd.Sources))
		for _, n := range hd.Sources {
			want[n] = true
		}
		var got string
		sources, trees, got, err = readSources(base, want, hd.TreeSources, lim)
		if err != nil {
			return hd.Base, hd.Version, fmt.Errorf("delta: sources in the base bundle: %w", err)
		}
		if got != hd.Base {
			return hd.Base, hd.Version, fmt.Errorf("delta against %s, but the base bundle is %s", hd.Base, got)
		}
		if _, err := base.Seek(0, io.SeekStart); err != nil {
			return hd.Base, hd.Version, fmt.Errorf("delta: base bundle: %w", err)
		}
	}

	bw := bufio.NewWriterSize(w, outBufSize)
	mg := merger{out: tar.NewWriter(bw), in: tar.NewReader(br), buf: make([]byte, copyBufSize), format: hd.Format, sources: sources, trees: trees, lim: lim}
	if err := mg.nextDelta(); err != nil {
		return hd.Base, hd.Version, err
	}
	got, err := eachEntry(base, lim, func(h *tar.Header, body io.Reader) error {
		if err := mg.deltaUpTo(h.Name); err != nil {
			return err
		}
		if mg.next != nil && mg.next.Name == h.Name {
			// Replaced; a patch or copy from its own path reads it here.
			if p, ok, _ := parsePatch(mg.next); ok && mg.format >= 2 && p.from == h.Name && h.Typeflag == tar.TypeReg {
				b, err := readSource(h.Name, body)
				if err != nil {
					return fmt.Errorf("delta: %w", err)
				}
				mg.own, mg.ownName = b, h.Name
			}
			return mg.emitDelta()
		}
		if gone[h.Name] || (len(goneDirs) > 0 && underGone(h.Name, goneDirs)) {
			return nil
		}
		return mg.emit(h, body)
	})
	if err != nil {
		return hd.Base, hd.Version, fmt.Errorf("delta: base bundle: %w", err)
	}
	if got != hd.Base {
		return hd.Base, hd.Version, fmt.Errorf("delta against %s, but the base bundle is %s", hd.Base, got)
	}
	if err := mg.deltaUpTo(""); err != nil {
		return hd.Base, hd.Version, err
	}
	// To the end of the stream, so that zstd checks the frame's checksum.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return hd.Base, hd.Version, fmt.Errorf("delta: %w", m.readError(err))
	}
	if err := mg.out.Close(); err != nil {
		return hd.Base, hd.Version, fmt.Errorf("delta: write: %w", err)
	}
	return hd.Base, hd.Version, bw.Flush()
}

// NewEncoder returns the zstd writer of a bundle rebuilt on a server: the
// fastest level, in parallel, 1 MiB windows (what ApplyDelta's caller
// stores; jepush's own bundles use Write's default level).
func NewEncoder(w io.Writer) (*zstd.Encoder, error) {
	return zstd.NewWriter(w, encoderOptions(zstd.SpeedFastest)...)
}

// merger writes the new tar from the base's entries and the delta's.
type merger struct {
	out  *tar.Writer
	in   *tar.Reader // the delta's entries
	next *tar.Header // the delta's next entry, nil at its end
	last string
	buf  []byte
	// Format 2: the base files read ahead, and the one replaced by the
	// next entry (own, named ownName).
	format  int
	lim     Limits
	sources map[string][]byte
	trees   map[string][]treeEntry
	own     []byte
	ownName string
}

func (mg *merger) nextDelta() error {
	h, err := mg.in.Next()
	if errors.Is(err, io.EOF) {
		mg.next = nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("delta: %w", err)
	}
	if mg.last != "" && h.Name <= mg.last {
		return fmt.Errorf("delta: entry %q comes after %q: not in bundle order", h.Name, mg.last)
	}
	mg.last, mg.next = h.Name, h
	return nil
}

// deltaUpTo writes the delta's entries that come before name ("": all).
func (mg *merger) deltaUpTo(name string) error {
	for mg.next != nil && (name == "" || mg.next.Name < name) {
		if err := mg.emitDelta(); err != nil {
			return err
		}
	}
	return nil
}

func (mg *merger) emitDelta() error {
	if err := mg.emitNext(); err != nil {
		return err
	}
	mg.own, mg.ownName = nil, ""
	return mg.nextDelta()
}

// emitNext writes the delta's next entry: as it is, or rebuilt from its
// source (format 2).
func (mg *merger) emitNext() error {
	h := mg.next
	if mg.format < 2 {
		return mg.emit(h, mg.in)
	}
	if h.Typeflag == typeTreeCopy {
		return mg.emitTree(h)
	}
	p, ok, err := parsePatch(h)
	if err != nil {
		return fmt.Errorf("delta: %w", err)
	}
	if !ok {
		return mg.emit(h, mg.in)
	}
	old, found := mg.sources[p.from]
	if p.from == h.Name && mg.ownName == h.Name {
		old, found = mg.own, true
	}
	if !found {
		return fmt.Errorf("delta: entry %q: its source %q is not a file of the base bundle, nor listed in the delta's sources", h.Name, p.from)
	}
	if p.size > mg.lim.MaxFileBytes {
		return fmt.Errorf("delta: entry %q: %d bytes, over the limit of %d bytes per file", h.Name, p.size, mg.lim.MaxFileBytes)
	}
	c := canonicalHeader(h.Name, kindFile, h.Mode&0o111 != 0, p.size, "")
	if err := mg.out.WriteHeader(&c); err != nil {
		return fmt.Errorf("delta: write %s: %w", h.Name, err)
	}
	if err := p.decode(writerOnly{mg.out}, mg.in, old, min(uint64(maxPatchWindow), mg.lim.MaxWindow)); err != nil {
		return fmt.Errorf("delta: entry %q: %w", h.Name, err)
	}
	return nil
}

// emit writes h's entry with its canonical header, and its content.
func (mg *merger) emit(h *tar.Header, body io.Reader) error {
	k := kindFile
	switch h.Typeflag {
	case tar.TypeDir:
		k = kindDir
	case tar.TypeSymlink:
		k = kindSymlink
	case tar.TypeReg:
	default:
		return fmt.Errorf("delta: entry %q: type %q cannot be in a bundle", h.Name, h.Typeflag)
	}
	c := canonicalHeader(h.Name, k, h.Mode&0o111 != 0, h.Size, h.Linkname)
	if err := mg.out.WriteHeader(&c); err != nil {
		return fmt.Errorf("delta: write %s: %w", h.Name, err)
	}
	if k != kindFile {
		return nil
	}
	if _, err := io.CopyBuffer(writerOnly{mg.out}, body, mg.buf); err != nil {
		return fmt.Errorf("delta: %s: %w", h.Name, err)
	}
	return nil
}

// readLine reads one line of at most max bytes, without its "\n".
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line bytes.Buffer
	for {
		part, err := r.ReadSlice('\n')
		line.Write(part)
		if line.Len() > max {
			return nil, fmt.Errorf("longer than %d bytes", max)
		}
		if err == nil {
			return bytes.TrimSuffix(line.Bytes(), []byte("\n")), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}
