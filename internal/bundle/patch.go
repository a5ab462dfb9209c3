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
	"errors"
	"fmt"
	"io"
	"strconv"

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
