//go:build linux || darwin || freebsd

package bundle

import (
	"os"
	"syscall"
	"time"
)

// statExtra returns a file's change time and inode number.
func statExtra(st os.FileInfo) (time.Time, uint64) {
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return time.Time{}, 0
	}
	return ctimeOf(s), uint64(s.Ino)
}
