package rollforward

import (
	"os"

	"golang.org/x/sys/unix"
)

// freeBytes is the space an unprivileged write may still use on dir's filesystem.
func freeBytes(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// syncFS flushes the filesystem that holds dir (one syncfs instead of an
// fsync per extracted file).
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}
