package bundle

// Delta format 2: what a file's previous version saves.
//
// A format-2 delta is a format-1 delta (a JSON line, then a tar of the
// entries to write, all compressed with zstd) whose file entries may say,
// in PAX records, that their content is not in the tar as is:
//
//	JECLOUD.enc=copy   JECLOUD.from=OLD  JECLOUD.size=N  the content of the base's file OLD
//	JECLOUD.enc=zstd   JECLOUD.from=OLD  JECLOUD.size=N  a zstd frame that decompresses to
//	                                                     the content, with OLD's as its
//	                                                     dictionary (a binary diff)
//
// The tar entry's own size is the payload's (0 for a copy); N is the
// file's. A copy needs only that the server has OLD, which the client
// knows from the manifest (a renamed or copied file costs its name). A
// patch needs OLD's content on the client too: jepush keeps the bundle of
// what it last pushed (see internal/push). The first line lists the base
// files that must be read before the merge ("sources": copies and patches
// from another path); a patch or copy from its own path reads it when the
// merge reaches it. The rebuilt tar is checked like any upload (its hash
// must be the announced version), so a wrong dictionary, a corrupt frame
// or a replayed delta can only be refused.

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// DeltaFormat is the newest delta format this package writes and reads.
const DeltaFormat = 2

// PAX records of a format-2 entry.
const (
	paxEnc  = "JECLOUD.enc"
	paxFrom = "JECLOUD.from"
	paxSize = "JECLOUD.size"
)

// Limits of patches and copies, on both sides: the sources are held in
// memory while a delta is written or applied.
const (
	// MaxPatchSource is the largest old file used as a dictionary or copied.
	MaxPatchSource = 8 << 20
	// maxPatchTarget is the largest new file compressed against a dictionary
	// (it is compressed in memory).
	maxPatchTarget = 32 << 20
	// MaxSources caps the sources one delta asks the server to read ahead.
	MaxSources = 64 << 20
	// patchDictID names the dictionary in each patch's frame.
	patchDictID = 1
	// maxPatchWindow is the window of a patch's frame: the dictionary and
	// the file fit in it.
	maxPatchWindow = 64 << 20
)

// DeltaPlan is what a format-2 delta sends for each file that changed.
type DeltaPlan struct {
	// Copies maps a new file to a base file of the same content.
	Copies map[string]string
	// Patchable lists, for each changed file, the base file of the same
	// name whose content would serve as dictionary (the client reads it
	// from its copy of the base, if it has one).
	Patchable map[string]string
}

// PlanDelta decides which files of tree can be sent as copies of base's
// files, and which could be patched against their previous version.
func PlanDelta(tree, base *Manifest) DeltaPlan {
	p := DeltaPlan{Copies: map[string]string{}, Patchable: map[string]string{}}
	send, _, _ := Diff(tree, base)
	byDigest := make(map[string]string)
	byName := make(map[string]ManifestEntry, len(base.Entries))
	for _, e := range base.Entries {
		byName[e.Name] = e
		if e.Type == "f" && e.Size <= MaxPatchSource {
			if _, ok := byDigest[e.Digest+"/"+strconv.FormatInt(e.Size, 10)]; !ok {
				byDigest[e.Digest+"/"+strconv.FormatInt(e.Size, 10)] = e.Name
			}
		}
	}
	var ahead int64
	for _, e := range send {
		if e.Type != "f" || e.Size == 0 {
			continue
		}
		old, same := byName[e.Name]
		if same && old.Type == "f" && old.Digest == e.Digest && old.Size == e.Size {
			p.Copies[e.Name] = e.Name // only the mode changed
			continue
		}
		if src, ok := byDigest[e.Digest+"/"+strconv.FormatInt(e.Size, 10)]; ok && ahead+e.Size <= MaxSources {
			p.Copies[e.Name] = src
			if src != e.Name {
				ahead += e.Size
			}
			continue
		}
		if same && old.Type == "f" && old.Size > 0 && old.Size <= MaxPatchSource && e.Size <= maxPatchTarget {
			p.Patchable[e.Name] = e.Name
		}
	}
	return p
}

// NeededOld lists the base files whose content WriteDelta2 would use as
// dictionaries: what to read from the client's copy of the base.
func (p DeltaPlan) NeededOld() map[string]bool {
	m := make(map[string]bool, len(p.Patchable))
	for _, src := range p.Patchable {
		m[src] = true
	}
	return m
}

// ReadFiles reads a bundle (compressed) and returns the content of its
// files named in want, and the bundle's ID, which the caller compares with
// the ID it expects before trusting the content.
func ReadFiles(r io.Reader, want map[string]bool, lim Limits) (map[string][]byte, string, error) {
	got := make(map[string][]byte, len(want))
	var total int64
	id, err := eachEntry(r, lim, func(h *tar.Header, body io.Reader) error {
		if h.Typeflag != tar.TypeReg || !want[h.Name] {
			return nil
		}
		if h.Size > MaxPatchSource || total+h.Size > MaxSources {
			return fmt.Errorf("%s: %d bytes, over the %d bytes a delta's sources may hold", h.Name, h.Size, int64(MaxSources))
		}
		b, err := io.ReadAll(io.LimitReader(body, h.Size))
		if err != nil {
			return err
		}
		total += int64(len(b))
		got[h.Name] = b
		return nil
	})
	return got, id, err
}

// patchEncoder compresses new files against old ones.
type patchEncoder struct {
	plain *zstd.Encoder
}

func newPatchEncoder() (*patchEncoder, error) {
	plain, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	return &patchEncoder{plain: plain}, nil
}

// patch returns the zstd frame of cur with old as its dictionary, or nil
// when it is not smaller than cur compressed on its own (then the file is
// sent whole, and the delta's own compression does the same work).
func (pe *patchEncoder) patch(old, cur []byte) ([]byte, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(patchWindow(len(old)+len(cur))), zstd.WithEncoderDictRaw(patchDictID, old),
		zstd.WithEncoderCRC(true))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	defer enc.Close()
	p := enc.EncodeAll(cur, nil)
	if len(p) >= len(pe.plain.EncodeAll(cur, nil)) {
		return nil, nil
	}
	return p, nil
}

// patchWindow is the smallest power of two that holds n bytes, within
// zstd's and maxPatchWindow's bounds.
func patchWindow(n int) int {
	w := zstd.MinWindowSize
	for w < n && w < maxPatchWindow {
		w <<= 1
	}
	return w
}

// unpatch writes to w the size bytes that the zstd frame read from r gives
// with dictionary old, and fails if it gives any other number of bytes.
func unpatch(w io.Writer, r io.Reader, old []byte, size int64, window uint64) error {
	dec, err := zstd.NewReader(r, zstd.WithDecoderDictRaw(patchDictID, old), zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(window), zstd.WithDecoderMaxMemory(window))
	if err != nil {
		return err
	}
	defer dec.Close()
	n, err := io.CopyN(w, dec, size)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("the patch gives %d bytes, not the %d announced", n, size)
		}
		return err
	}
	var one [1]byte
	if k, err := dec.Read(one[:]); k > 0 {
		return fmt.Errorf("the patch gives more than the %d bytes announced", size)
	} else if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// patchEntry is a format-2 entry's content once decoded: h with the file's
// size, and where its content comes from.
type patchEntry struct {
	enc, from string
	size      int64
}

// parsePatch reads the PAX records of a format-2 entry (ok false: a whole
// file).
func parsePatch(h *tar.Header) (p patchEntry, ok bool, err error) {
	enc, ok := h.PAXRecords[paxEnc]
	if !ok {
		return p, false, nil
	}
	p.enc, p.from = enc, h.PAXRecords[paxFrom]
	if h.Typeflag != tar.TypeReg {
		return p, true, fmt.Errorf("entry %q: %s of a %q entry, which is not a file", h.Name, paxEnc, h.Typeflag)
	}
	if enc != "copy" && enc != "zstd" {
		return p, true, fmt.Errorf("entry %q: unknown encoding %s=%q (this jeagent reads copy and zstd)", h.Name, paxEnc, enc)
	}
	if p.from == "" {
		return p, true, fmt.Errorf("entry %q: %s without %s", h.Name, paxEnc, paxFrom)
	}
	p.size, err = strconv.ParseInt(h.PAXRecords[paxSize], 10, 64)
	if err != nil || p.size < 0 {
		return p, true, fmt.Errorf("entry %q: %s=%q is not a size", h.Name, paxSize, h.PAXRecords[paxSize])
	}
	if enc == "copy" && h.Size != 0 {
		return p, true, fmt.Errorf("entry %q: a copy with %d bytes of payload", h.Name, h.Size)
	}
	return p, true, nil
}

// decode writes to w the content of p's entry, whose payload is body, from
// its source old.
func (p patchEntry) decode(w io.Writer, body io.Reader, old []byte, window uint64) error {
	if p.enc == "copy" {
		if int64(len(old)) != p.size {
			return fmt.Errorf("a copy of %s (%d bytes) announced as %d bytes", p.from, len(old), p.size)
		}
		_, err := w.Write(old)
		return err
	}
	if err := unpatch(w, body, old, p.size, window); err != nil {
		return fmt.Errorf("patch against %s: %w", p.from, err)
	}
	return nil
}

// readSource reads a base file's content for a patch, within the cap.
func readSource(name string, body io.Reader) ([]byte, error) {
	var b bytes.Buffer
	n, err := io.Copy(&b, io.LimitReader(body, MaxPatchSource+1))
	if err != nil {
		return nil, err
	}
	if n > MaxPatchSource {
		return nil, fmt.Errorf("base file %s is over %d bytes: it cannot be a patch's source", name, int64(MaxPatchSource))
	}
	return b.Bytes(), nil
}

// typeTreeCopy is the tar type of a tree copy: the entry's name is a new
// directory, its Linkname a directory of the base (both ending in "/"),
// and the new directory holds exactly what that one held.
const typeTreeCopy = 'J'

// treeEntry is one entry of a tree copy's source, its name relative to
// the source directory ("" for the directory itself).
type treeEntry struct {
	rel     string
	kind    kind
	exec    bool
	target  string
	content []byte
}

// findTreeCopies finds, among the directories new in tree, those that hold
// exactly what a directory gone from base held (a renamed directory),
// within MaxSources in all. It maps the new directory to the old.
func findTreeCopies(tree, base *Manifest, goneDirs []string) map[string]string {
	if len(goneDirs) == 0 {
		return nil
	}
	sig := func(ents []ManifestEntry, i int) (string, int64, int) {
		prefix := ents[i].Name
		h := sha256.New()
		var size int64
		j := i
		for ; j < len(ents) && strings.HasPrefix(ents[j].Name, prefix); j++ {
			e := ents[j]
			fmt.Fprintf(h, "%s\x00%s\x00%v\x00%d\x00%s\x00%s\n", strings.TrimPrefix(e.Name, prefix), e.Type, e.Exec, e.Size, e.Digest, e.Target)
			size += e.Size
		}
		return string(h.Sum(nil)), size, j
	}
	gone := make(map[string]bool, len(goneDirs))
	for _, d := range goneDirs {
		gone[d] = true
	}
	old := map[string]string{}
	sizes := map[string]int64{}
	for i, e := range base.Entries {
		if gone[e.Name] {
			k, size, _ := sig(base.Entries, i)
			if _, dup := old[k]; !dup {
				old[k], sizes[k] = e.Name, size
			}
		}
	}
	inBase := make(map[string]bool, len(base.Entries))
	for _, e := range base.Entries {
		inBase[e.Name] = true
	}
	copies := map[string]string{}
	var total int64
	for i := 0; i < len(tree.Entries); i++ {
		e := tree.Entries[i]
		if e.Type != "d" || inBase[e.Name] {
			continue
		}
		k, _, next := sig(tree.Entries, i)
		if d, ok := old[k]; ok && total+sizes[k] <= MaxSources {
			copies[e.Name] = d
			total += sizes[k]
			i = next - 1 // nothing under it needs looking at
		}
	}
	return copies
}

// readSources reads a bundle (compressed): the content of the files named
// in want, the subtrees of the directories in trees, and the bundle's ID,
// within MaxSources in all.
func readSources(r io.Reader, want map[string]bool, trees []string, lim Limits) (map[string][]byte, map[string][]treeEntry, string, error) {
	files := make(map[string][]byte, len(want))
	subtrees := make(map[string][]treeEntry, len(trees))
	var total int64
	id, err := eachEntry(r, lim, func(h *tar.Header, body io.Reader) error {
		var dirs []string
		for _, d := range trees {
			if strings.HasPrefix(h.Name, d) {
				dirs = append(dirs, d)
			}
		}
		if len(dirs) == 0 && (h.Typeflag != tar.TypeReg || !want[h.Name]) {
			return nil
		}
		var content []byte
		if h.Typeflag == tar.TypeReg {
			if h.Size > MaxSources || total+h.Size > MaxSources {
				return fmt.Errorf("%s: %d bytes, over the %d bytes a delta's sources may hold", h.Name, h.Size, int64(MaxSources))
			}
			b, err := io.ReadAll(io.LimitReader(body, h.Size))
			if err != nil {
				return err
			}
			total += int64(len(b))
			content = b
			if want[h.Name] {
				files[h.Name] = b
			}
		}
		for _, d := range dirs {
			k := kindFile
			switch h.Typeflag {
			case tar.TypeDir:
				k = kindDir
			case tar.TypeSymlink:
				k = kindSymlink
			}
			subtrees[d] = append(subtrees[d], treeEntry{rel: strings.TrimPrefix(h.Name, d), kind: k, exec: h.Mode&0o111 != 0, target: h.Linkname, content: content})
		}
		return nil
	})
	return files, subtrees, id, err
}

// emitTree writes a tree copy: the source's entries under the new name.
func (mg *merger) emitTree(h *tar.Header) error {
	if !strings.HasSuffix(h.Name, "/") || !strings.HasSuffix(h.Linkname, "/") {
		return fmt.Errorf("delta: tree copy %q from %q: both must be directories (end in /)", h.Name, h.Linkname)
	}
	ents, ok := mg.trees[h.Linkname]
	if !ok || len(ents) == 0 || ents[0].rel != "" || ents[0].kind != kindDir {
		return fmt.Errorf("delta: tree copy %q: its source %q is not a directory of the base bundle listed in the delta's tree sources", h.Name, h.Linkname)
	}
	for _, e := range ents {
		c := canonicalHeader(h.Name+e.rel, e.kind, e.exec, int64(len(e.content)), e.target)
		if err := mg.out.WriteHeader(&c); err != nil {
			return fmt.Errorf("delta: write %s: %w", c.Name, err)
		}
		if e.kind == kindFile {
			if _, err := mg.out.Write(e.content); err != nil {
				return fmt.Errorf("delta: write %s: %w", c.Name, err)
			}
		}
	}
	mg.last = h.Name + "\xff" // what follows in the delta comes after the whole copy
	return nil
}
