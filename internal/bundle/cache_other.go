//go:build !linux && !darwin && !freebsd

package bundle

import (
	"os"
	"time"
)

// statExtra has nothing more than os.FileInfo here.
func statExtra(os.FileInfo) (time.Time, uint64) { return time.Time{}, 0 }
