// Package bundle makes and opens JeCloud bundles: canonical tar streams
// compressed with zstd, named by the SHA-256 of the tar.
//
// # The canonical tar
//
// [Write] turns the same tree into the same bytes on any machine, whatever the
// order the filesystem lists it in and whatever its times, owners and umask:
//
//   - one entry per directory, regular file and symlink, named by its
//     '/'-separated path relative to the app directory; directories end in "/";
//   - entries sorted by name, byte by byte; since a directory's name is a
//     prefix of its children's, parents always come before children;
//   - times are the Unix epoch, Uid/Gid 0, Uname/Gname empty, no xattrs;
//   - modes: directories 0755, symlinks 0777, regular files 0755 if any
//     executable bit is set and 0644 otherwise;
//   - archive/tar with [tar.FormatPAX]: plain USTAR headers, plus a PAX record
//     only where USTAR cannot hold a value (long or non-ASCII names and
//     symlink targets, files of 8 GiB or more);
//   - the end-of-archive trailer of two zero blocks.
//
// The version ID is the first [IDLen] hex digits of the SHA-256 of that
// uncompressed stream. Compression settings do not change the ID.
//
// # What goes in
//
// See [Files]: everything under the directory except what .jepushignore
// files exclude (gitignore syntax) and, by default, .git and node_modules.
//
// # Opening bundles
//
// [Inspect] and [Extract] apply one set of rules (see [UnsafeEntryError]) and
// caps ([Limits]), hash every decompressed byte, and report the [Info].
package bundle

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// IDLen is the length of a version ID in hex digits.
const IDLen = 12

// ID formats a SHA-256 sum of a tar stream as a version ID (first 12
// lowercase hex digits).
func ID(sum []byte) string {
	s := hex.EncodeToString(sum)
	if len(s) > IDLen {
		s = s[:IDLen]
	}
	return s
}

// Limits caps what Inspect and Extract accept. A zero field means the value
// from DefaultLimits.
type Limits struct {
	MaxTarBytes  int64  // cap on the decompressed tar stream (zstd bomb guard)
	MaxEntries   int    // cap on the number of tar entries
	MaxFileBytes int64  // cap on one file
	MaxWindow    uint64 // zstd decoder window / memory cap
}

// DefaultLimits returns 8 GiB of tar, 1,000,000 entries, 4 GiB per file and a
// 128 MiB zstd window.
func DefaultLimits() Limits {
	return Limits{
		MaxTarBytes:  8 << 30,
		MaxEntries:   1_000_000,
		MaxFileBytes: 4 << 30,
		MaxWindow:    128 << 20,
	}
}

// orDefault fills zero fields from DefaultLimits.
func (l Limits) orDefault() Limits {
	d := DefaultLimits()
	if l.MaxTarBytes <= 0 {
		l.MaxTarBytes = d.MaxTarBytes
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = d.MaxFileBytes
	}
	if l.MaxWindow == 0 {
		l.MaxWindow = d.MaxWindow
	}
	return l
}

// Info describes a bundle that was read to its end.
type Info struct {
	ID           string // version ID: hash of every decompressed byte, trailer and anything after it included
	TarBytes     int64  // decompressed bytes
	Entries      int    // tar entries (PAX global headers included)
	ContentBytes int64  // sum of the sizes of the regular files
}

// ErrTooLarge is wrapped by the errors of Inspect and Extract when a bundle
// exceeds one of the Limits; the message names the cap and its value.
var ErrTooLarge = errors.New("bundle too large")

// UnsafeEntryError is returned for an entry the rules refuse. Inspect and
// Extract accept:
//
//   - directories, regular files and symlinks, and PAX global headers
//     (skipped); hard links, devices, FIFOs, sparse files and other types
//     are refused;
//   - relative names with no ".." element, no element over 255 bytes and
//     4096 bytes at most; one or more leading "./" and a directory's
//     trailing "/" are normalised, other non-canonical forms ("a//b",
//     "a/./b") refused; "./" or "." names the top directory, which the
//     caller made, and may only be a directory;
//   - each path once, and only after its parent directory: no duplicate,
//     nothing written through a symlink or below a file;
//   - symlinks with a relative target that, followed the way the kernel
//     would through the other symlinks of the bundle, stays inside the top
//     directory (checked again once the whole bundle is read, then created).
type UnsafeEntryError struct {
	Name   string // the entry's name as stored in the tar
	Reason string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("unsafe entry %q in bundle: %s", e.Name, e.Reason)
}

func unsafeEntry(name, format string, args ...any) error {
	return &UnsafeEntryError{Name: name, Reason: fmt.Sprintf(format, args...)}
}

// tooLarge returns an error wrapping ErrTooLarge.
func tooLarge(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrTooLarge}, args...)...)
}

// MaxBundleBytes is the most a compressed bundle within l may take: the tar
// cap plus zstd's overhead on data it cannot compress (a few bytes per
// 128 KiB block), with room to spare. A longer stream is padding (empty or
// skippable frames) and is refused before it fills a disk.
func (l Limits) MaxBundleBytes() int64 {
	l = l.orDefault()
	return l.MaxTarBytes + l.MaxTarBytes/64 + 1<<20
}

// CapReader reads r and fails with ErrTooLarge once more than max bytes
// came through.
func CapReader(r io.Reader, max int64) io.Reader { return newCapReader(r, max) }

func newCapReader(r io.Reader, max int64) *capReader {
	c := &capReader{r: r}
	c.left.Store(max)
	return c
}

// capReader counts in an atomic: the zstd decoder reads from its own
// goroutine while read's goroutine asks explain.
type capReader struct {
	r    io.Reader
	left atomic.Int64
}

var errOverCap = tooLarge("compressed bundle over its cap (MaxBundleBytes): padding past its content")

// explain turns an error that followed the cap into the cap's error.
func (c *capReader) explain(err error) error {
	if c.left.Load() < 0 && !errors.Is(err, ErrTooLarge) {
		return errOverCap
	}
	return err
}

func (c *capReader) Read(p []byte) (int, error) {
	left := c.left.Load()
	if left < 0 {
		return 0, errOverCap
	}
	if int64(len(p)) > left+1 {
		p = p[:left+1]
	}
	n, err := c.r.Read(p)
	if c.left.Add(-int64(n)) < 0 {
		return n, errOverCap
	}
	return n, err
}
