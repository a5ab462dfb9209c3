// Package atomicfile writes files and symlinks so that a reader, or the next
// boot after a power cut, sees either the old content or the new one, never a
// mix: temp file in the same directory, fsync, rename, fsync of the directory.
package atomicfile

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// tempMarker is part of every temp name this package makes, so that
// leftovers of an interrupted write can be found and removed.
const tempMarker = ".tmp-"

// TempName returns a fresh temp name beside path: ".BASE.tmp-RANDOM".
// The name needs to be unique, not secret (temps are created with O_EXCL),
// so it comes from math/rand/v2, seeded by the kernel: crypto/rand's
// start-up (its self-tests) would cost every jeagent-tick run.
func TempName(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+tempMarker+fmt.Sprintf("%012x", rand.Uint64()&(1<<48-1)))
}

// IsTemp reports whether name (a base name) is a temp name made by TempName.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, tempMarker)
}

// TempFor returns the base name of the file that name, a temp name made by
// TempName, stands in for (".config.env.tmp-1a2b" -> "config.env"), and
// false when name is not such a temp name.
func TempFor(name string) (string, bool) {
	if !IsTemp(name) {
		return "", false
	}
	i := strings.LastIndex(name, tempMarker)
	return name[1:i], true
}

// WriteFile writes data to path atomically with the given permissions.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return WriteFileOwned(path, data, perm, -1, -1)
}

// WriteFileOwned is WriteFile that also sets the owner and group (-1 keeps
// the writer's) before the file is renamed into place: a secret is never
// readable by others, not even for a moment.
func WriteFileOwned(path string, data []byte, perm os.FileMode, uid, gid int) (err error) {
	tmp := TempName(path)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if uid != -1 || gid != -1 {
		if err = f.Chown(uid, gid); err != nil {
			return err
		}
	}
	// The mode given to OpenFile is filtered by the umask; set it exactly.
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// Symlink makes path a symlink to target, replacing what was there in one
// rename: readers never see path missing.
func Symlink(target, path string) error {
	tmp := TempName(path)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir fsyncs a directory so that renames and creations in it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// CleanTemps removes the leftovers of interrupted writes in dir (files and
// symlinks with a temp name; directories are left alone). It returns the
// names it removed.
func CleanTemps(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		if !IsTemp(e.Name()) || e.IsDir() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !os.IsNotExist(err) {
			return removed, err
		}
		removed = append(removed, e.Name())
	}
	return removed, nil
}

// File is a file being written under a temp name, for content that does
// not fit in memory: Commit puts it in place atomically, Abort removes it.
type File struct {
	*os.File
	path string
	done bool
}

// Create starts writing path (mode perm) under a temp name beside it.
func Create(path string, perm os.FileMode) (*File, error) {
	tmp := TempName(path)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	return &File{File: f, path: path}, nil
}

// Commit fsyncs the file and renames it to its path.
func (f *File) Commit() error { return f.CommitAs(f.path) }

// CommitAs is Commit to path instead of the path given to Create, for
// content named after what it holds (a hash known once it is written).
// path must be in the same directory: a rename is atomic only within one.
func (f *File) CommitAs(path string) error {
	if f.done {
		return fmt.Errorf("%s: already committed or aborted", f.path)
	}
	if filepath.Dir(path) != filepath.Dir(f.path) {
		f.Abort()
		return fmt.Errorf("%s cannot be committed as %s: not in the same directory (only a rename within one is atomic)", f.path, path)
	}
	f.done = true
	tmp := f.Name()
	err := f.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// Abort removes the temp file; after Commit it does nothing, so that
// `defer f.Abort()` is always safe.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	os.Remove(f.Name())
}
