//go:build darwin || freebsd

package bundle

import (
	"syscall"
	"time"
)

func ctimeOf(s *syscall.Stat_t) time.Time { return time.Unix(s.Ctimespec.Unix()) }
