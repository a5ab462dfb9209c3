// Package versions is this server's store of an app environment's
// versions: the bundles in source/versions/ID.tar.zst, each with the
// receipt ID.received.json of what was checked when it came in, and the
// releases ID/ extracted from them.
//
// It owns one rule: a bundle in place always has its receipt (unless a
// person put it there). A bundle is written under a temp name beside its
// place (internal/atomicfile), checked as it is written when it comes from
// elsewhere, fsynced, given its receipt, and only then renamed to its ID;
// the directory is fsynced after. Nothing is left behind on any failure.
// `jeagent receive` (Receive, ReceiveDelta), the global state's follower
// (internal/fleet) and the git builder (internal/gitdeploy, Put) all store
// bundles here.
package versions

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/bundle"
	"github.com/jecloud/jecloud/internal/bytecount"
	"github.com/jecloud/jecloud/internal/state"
)

// Store is the versions of the app environments under Layout's root.
type Store struct {
	Layout state.Layout
	// Reserve is the free space a write here leaves on the disk: a write
	// is refused before it starts when there is less, and stopped when it
	// would leave less (checked every 8 MiB). 0: no check.
	Reserve int64
	// Free returns the free bytes on dir's filesystem (nil: statfs).
	Free func(dir string) (int64, error)
}

// Has reports whether version id is here, as a bundle or a release.
func (s Store) Has(ae state.AppEnv, id string) bool {
	for _, p := range []string{s.Layout.Bundle(ae, id), s.Layout.Release(ae, id)} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// Live reports whether version id is live and nothing else is pending:
// app.json says so and versions/current points at it.
func (s Store) Live(ae state.AppEnv, id string) bool {
	var a state.App
	if err := state.Read(s.Layout.AppJSON(ae), &a); err != nil {
		return false
	}
	target, err := os.Readlink(s.Layout.Current(ae))
	return err == nil && a.Deployment == nil && a.CurrentVersion == id && filepath.Base(target) == id
}

// Receive stores the bundle read from r as version id, only if it checks
// out (bundle.Inspect) and its hash is id. It returns the bytes read.
func (s Store) Receive(ae state.AppEnv, id string, r io.Reader) (int64, error) {
	return s.store(ae, id, func(w io.Writer) (int64, bundle.Info, error) { return receive(w, r, id) })
}

// ReceiveDelta rebuilds version id's bundle from version base's, which
// must be here, and a delta read from r (bundle.ApplyDelta), and stores it
// like Receive: the rebuilt tar is checked as it is compressed into place,
// and its hash must be id. It returns the bytes of the rebuilt bundle.
//
// A delta for a version that is already here is refused (a replay: jepush
// asks `has` first), and so is one whose rebuild is not id: the versions
// in place are never touched.
func (s Store) ReceiveDelta(ae state.AppEnv, base, id string, r io.Reader) (int64, error) {
	if s.Has(ae, id) {
		io.Copy(io.Discard, r)
		return 0, fmt.Errorf("changes for %s refused: version %s is already here (a replayed delta?); nothing was changed", id, id)
	}
	bf, err := os.Open(s.Layout.Bundle(ae, base))
	if err != nil {
		return 0, fmt.Errorf("changes against %s: %w", base, err)
	}
	defer bf.Close()
	return s.store(ae, id, func(w io.Writer) (int64, bundle.Info, error) { return applyDelta(w, bf, r, base, id) })
}

// Put bundles directory dir (bundle.Write, as `jepush bundle` does: the
// same tree gives the same ID) into place as its version and returns the
// ID. The bundle is made here, so it is not checked again; its receipt is
// written as Receive writes it. A version whose bundle is already here is
// left as it is.
func (s Store) Put(ae state.AppEnv, dir string) (string, error) {
	versions := s.Layout.Versions(ae)
	if err := s.Layout.MkdirVersions(ae); err != nil {
		return "", err
	}
	if err := s.checkFree(versions, "a git build"); err != nil {
		return "", err
	}
	// Named once written: under a temp name until then (a leftover if
	// interrupted, removed by the roll-forward).
	f, err := atomicfile.Create(filepath.Join(versions, "git-build.tar.zst"), 0o644)
	if err != nil {
		return "", err
	}
	defer f.Abort()
	var content int64
	id, err := bundle.Write(dir, &reserveWriter{w: f, s: s, dir: versions, id: "a git build"}, bundle.WriteOptions{Progress: func(_ int, c int64) { content = c }})
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(s.Layout.Bundle(ae, id)); err == nil {
		return id, nil // built before: the same bytes
	}
	entries, err := bundle.Files(dir)
	if err != nil {
		return "", err
	}
	return id, s.place(f, ae, id, state.Receipt{ContentBytes: content, Entries: len(entries), Received: state.Now()})
}

// store writes version id's bundle through fill, which writes it to the
// writer it is given and returns the bytes written and what it checked.
// The bundle is put in place only if fill succeeds; nothing is left behind
// otherwise.
func (s Store) store(ae state.AppEnv, id string, fill func(io.Writer) (int64, bundle.Info, error)) (int64, error) {
	final := s.Layout.Bundle(ae, id)
	if err := s.Layout.MkdirVersions(ae); err != nil {
		return 0, err
	}
	if err := s.checkFree(filepath.Dir(final), id); err != nil {
		return 0, err
	}
	f, err := atomicfile.Create(final, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Abort()
	n, info, err := fill(&reserveWriter{w: f, s: s, dir: filepath.Dir(final), id: id})
	if err == nil {
		err = s.place(f, ae, id, state.Receipt{ContentBytes: info.ContentBytes, Entries: info.Entries, Received: state.Now()})
	}
	if errors.Is(err, syscall.ENOSPC) {
		return n, fmt.Errorf("out of disk space in %s while receiving %s: free some space and push again: %w", filepath.Dir(final), id, err)
	}
	return n, err
}

// place puts the bundle written to f in place as version id: f is fsynced,
// then the receipt written, then f renamed to the bundle's name (and the
// directory fsynced). The receipt comes first so that a bundle in place
// always has one. f is removed on failure.
func (s Store) place(f *atomicfile.File, ae state.AppEnv, id string, r state.Receipt) error {
	if err := f.Sync(); err != nil {
		f.Abort()
		return err
	}
	if err := state.Write(s.Layout.Receipt(ae, id), r); err != nil {
		f.Abort()
		return err
	}
	return f.CommitAs(s.Layout.Bundle(ae, id))
}

// receive copies r to w, checking the bundle as it goes.
func receive(w io.Writer, r io.Reader, id string) (int64, bundle.Info, error) {
	cw := &bytecount.Writer{W: w}
	lim := bundle.DefaultLimits()
	r = bundle.CapReader(r, lim.MaxBundleBytes()) // padding past the content
	tee := io.TeeReader(r, cw)
	info, err := bundle.Inspect(tee, lim)
	if err != nil {
		io.Copy(io.Discard, r)
		return cw.N, info, fmt.Errorf("bundle for %s refused: %w", id, err)
	}
	// The zstd reader may stop before the end of the input: keep the rest.
	if _, err := io.Copy(cw, r); err != nil {
		return cw.N, info, err
	}
	if info.ID != id {
		return cw.N, info, fmt.Errorf("bundle received for %s hashes to %s: the upload was corrupted or the ID is wrong; push again", id, info.ID)
	}
	return cw.N, info, nil
}

// applyDelta writes to w the bundle of version id rebuilt from base's
// bundle and the delta read from r, checking it as it goes.
func applyDelta(w io.Writer, base io.ReadSeeker, r io.Reader, baseID, id string) (int64, bundle.Info, error) {
	lim := bundle.DefaultLimits()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, v, err := bundle.ApplyDelta(base, bundle.CapReader(r, lim.MaxBundleBytes()), pw, lim)
		if err == nil && v != id {
			err = fmt.Errorf("the changes are for version %s, not %s", v, id)
		}
		pw.CloseWithError(err)
		done <- err
	}()
	cw := &bytecount.Writer{W: w}
	enc, err := bundle.NewEncoder(cw)
	if err != nil {
		return 0, bundle.Info{}, err
	}
	defer enc.Close()
	info, err := bundle.InspectTar(io.TeeReader(pr, enc), lim)
	pr.CloseWithError(errStoppedReading) // ends ApplyDelta if the check gave up first
	if derr := <-done; derr != nil && !errors.Is(derr, errStoppedReading) {
		return cw.N, info, fmt.Errorf("changes against %s refused: %w", baseID, derr)
	}
	if err != nil {
		return cw.N, info, fmt.Errorf("bundle rebuilt for %s refused: %w", id, err)
	}
	if info.ID != id {
		return cw.N, info, fmt.Errorf("changes against %s refused: the bundle they rebuild hashes to %s, not %s (a corrupted or replayed delta, or a wrong base); nothing was changed: push again", baseID, info.ID, id)
	}
	if err := enc.Close(); err != nil {
		return cw.N, info, err
	}
	return cw.N, info, nil
}

var errStoppedReading = errors.New("the rebuilt bundle was refused")
