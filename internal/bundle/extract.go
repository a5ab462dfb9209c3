package bundle

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Extract writes the bundle's entries into dir (created by the caller,
// empty), enforcing the same rules as Inspect, and returns the Info computed
// while reading. It does not compare the ID: the caller does. It does not
// fsync (the caller syncs the filesystem once). On error it leaves what it
// wrote; the caller removes dir.
//
// Directories get mode 0755 and regular files 0644, or 0755 when the entry
// has an executable bit, whatever the umask. Every write goes through an
// os.Root on dir, so even a flaw in the rules could not write outside it.
// Write errors keep the error of the system call wrapped (errors.Is(err,
// syscall.ENOSPC) works).
func Extract(r io.Reader, dir string, lim Limits) (Info, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Info{}, fmt.Errorf("extract bundle: %w", err)
	}
	defer root.Close()
	return read(r, lim, rootSink{root})
}

// rootSink creates the entries under an os.Root.
type rootSink struct{ root *os.Root }

func (s rootSink) mkdir(name string) error {
	name = filepath.FromSlash(name)
	if err := s.root.Mkdir(name, 0o755); err != nil {
		return fmt.Errorf("extract bundle: %w", err)
	}
	if err := s.root.Chmod(name, 0o755); err != nil { // the umask may have cleared bits
		return fmt.Errorf("extract bundle: %w", err)
	}
	return nil
}

func (s rootSink) symlink(name, target string) error {
	if err := s.root.Symlink(target, filepath.FromSlash(name)); err != nil {
		return fmt.Errorf("extract bundle: %w", err)
	}
	return nil
}

func (s rootSink) file(name string, mode fs.FileMode, r io.Reader, buf []byte) error {
	f, err := s.root.OpenFile(filepath.FromSlash(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("extract bundle: %w", err)
	}
	// writerOnly hides os.File's ReadFrom, which would copy with a buffer
	// of its own for every file.
	_, err = io.CopyBuffer(writerOnly{f}, r, buf)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("extract bundle: %w", err)
	}
	return nil
}

type writerOnly struct{ io.Writer }
