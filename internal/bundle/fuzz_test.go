package bundle

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzExtract feeds Extract and Inspect tar streams (compressed by the
// harness when raw is false, so the fuzzer works on the tar layer) and raw
// zstd streams. Properties: no panic, nothing written outside dir, no
// symlink in dir that leads outside, and Inspect agrees with Extract.
func FuzzExtract(f *testing.F) {
	valid := f.TempDir()
	mkTree(f, valid, sampleTree...)
	_, bundle := writeBundle(f, valid)
	f.Add(decompress(f, bundle), false)
	f.Add(bundle, true)
	for _, tc := range hostile {
		f.Add(mkTar(f, tc.ents...), false)
	}
	f.Add(zstdBomb(f, 64<<20), true)

	lim := Limits{MaxTarBytes: 4 << 20, MaxEntries: 500, MaxFileBytes: 1 << 20, MaxWindow: 8 << 20}
	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		if !raw {
			data = compress(data)
		}
		parent := t.TempDir()
		dst := filepath.Join(parent, "dst")
		sentinel := filepath.Join(parent, "sentinel")
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(sentinel, []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}

		xinfo, xerr := Extract(bytes.NewReader(data), dst, lim)
		iinfo, ierr := Inspect(bytes.NewReader(data), lim)

		// Extract does what Inspect does, and writes: whatever Inspect
		// refuses, Extract refuses too, and what Extract accepts, Inspect
		// accepts with the same Info.
		if ierr != nil && xerr == nil {
			t.Fatalf("Inspect refused (%v) what Extract accepted", ierr)
		}
		if xerr == nil && iinfo != xinfo {
			t.Fatalf("Info: Extract %+v, Inspect %+v", xinfo, iinfo)
		}
		var ue *UnsafeEntryError
		if errors.As(ierr, &ue) && (xerr == nil || xerr.Error() != ierr.Error()) && !isFSError(xerr) {
			t.Fatalf("Inspect: %v\nExtract: %v", ierr, xerr)
		}

		assertOnly(t, parent, "dst", "sentinel")
		if b, err := os.ReadFile(sentinel); err != nil || string(b) != "keep" {
			t.Fatalf("sentinel changed: %q %v", b, err)
		}
		assertInside(t, dst)
	})
}

// isFSError reports whether err came from the filesystem rather than the
// rules (Extract may meet one before the entry Inspect refuses).
func isFSError(err error) bool {
	var pe *os.PathError
	var le *os.LinkError
	return errors.As(err, &pe) || errors.As(err, &le)
}

// assertInside checks that every symlink under dst that resolves, resolves
// inside dst.
func assertInside(t *testing.T, dst string) {
	t.Helper()
	real, err := filepath.EvalSymlinks(dst)
	if err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		to, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil // dangling: leads nowhere
		}
		if to != real && !strings.HasPrefix(to, real+string(filepath.Separator)) {
			target, _ := os.Readlink(p)
			t.Errorf("symlink %s -> %s resolves to %s, outside %s", p, target, to, real)
		}
		return nil
	})
}

// FuzzApplyDelta feeds ApplyDelta deltas of both formats (compressed by the
// harness when raw is false, so the fuzzer works on the delta's own
// layer: its first line, the tar, the patches' frames) against a fixed
// base. Properties: no panic, the limits hold, and what it accepts is a
// tar that passes InspectTar.
func FuzzApplyDelta(f *testing.F) {
	dir := f.TempDir()
	mkTree(f, dir, "a/", "a/x=1", "b/c=2", "big="+largeText(1), "l->a/x", "z="+strings.Repeat("z", 3000))
	_, base := writeBundle(f, dir)
	m, err := ReadManifest(bytes.NewReader(base), Limits{})
	if err != nil {
		f.Fatal(err)
	}
	mkTree(f, dir, "big="+largeText(2), "a/z2="+strings.Repeat("z", 3000), "a/x*=1")
	rm(f, dir, "b")
	mkTree(f, dir, "bb/c=2")
	tree, err := Scan(dir, WriteOptions{})
	if err != nil {
		f.Fatal(err)
	}
	old, _, err := ReadFiles(bytes.NewReader(base), PlanDelta(tree, m).NeededOld(), Limits{})
	if err != nil {
		f.Fatal(err)
	}
	for _, o := range []DeltaOptions{{}, {Format: 2}, {Format: 2, Old: old}} {
		var d bytes.Buffer
		if _, err := WriteDeltaWith(dir, tree, m, &d, o); err != nil {
			f.Fatal(err)
		}
		f.Add(decompress(f, d.Bytes()), false)
		f.Add(d.Bytes(), true)
	}
	f.Add([]byte(`{"base":"x","version":"y","format":3}`+"\n"), false)
	f.Add([]byte(`{"base":"x","version":"y","format":2,"sources":["big","nope"]}`+"\n"), false)

	lim := Limits{MaxTarBytes: 4 << 20, MaxEntries: 500, MaxFileBytes: 1 << 20, MaxWindow: 8 << 20}
	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		if !raw {
			data = compress(data)
		}
		var out bytes.Buffer
		_, _, err := ApplyDelta(bytes.NewReader(base), bytes.NewReader(data), &out, lim)
		if err != nil {
			return
		}
		if _, err := InspectTar(bytes.NewReader(out.Bytes()), lim); err != nil {
			// A delta may name entries a bundle may not hold: the
			// caller's InspectTar refuses them. Only a tar that does not
			// parse at all would be ApplyDelta's fault.
			if strings.Contains(err.Error(), "tar:") {
				t.Fatalf("ApplyDelta wrote an unreadable tar: %v", err)
			}
		}
	})
}
