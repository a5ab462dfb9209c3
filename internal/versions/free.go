package versions

import (
	"errors"
	"fmt"
	"io"

	"github.com/jecloud/jecloud/internal/bytecount"
)

// ErrReserve is a write refused or stopped because the disk would have
// less free space than the store's Reserve.
var ErrReserve = errors.New("not enough free space")

// checkEvery is how many bytes a write goes between two looks at the free
// space: a statfs per 8 MiB costs nothing next to writing them.
const checkEvery = 8 << 20

// free returns the free space on dir's filesystem.
func (s Store) free(dir string) (int64, error) {
	if s.Free != nil {
		return s.Free(dir)
	}
	return statfsFree(dir)
}

// checkFree refuses a write into dir when the disk already has less free
// space than the Reserve (the state files, the logs and the other apps
// need it): before a byte is written.
func (s Store) checkFree(dir, id string) error {
	if s.Reserve <= 0 {
		return nil
	}
	free, err := s.free(dir)
	if err != nil || free >= s.Reserve {
		return nil // a filesystem that cannot say: ENOSPC is still caught
	}
	return fmt.Errorf("%w in %s for %s: %s free, and JeCloud keeps %s free for state, logs and the other apps: "+
		"free some space (old releases: sys/server.json retention) and push again", ErrReserve, dir, id,
		bytecount.Format(free), bytecount.Format(s.Reserve))
}

// reserveWriter stops a write (with ErrReserve) when, looked at every
// checkEvery bytes, the disk has less free space than the Reserve.
type reserveWriter struct {
	w        io.Writer
	s        Store
	dir, id  string
	sinceChk int64
}

func (r *reserveWriter) Write(p []byte) (int, error) {
	if r.s.Reserve > 0 {
		r.sinceChk += int64(len(p))
		if r.sinceChk >= checkEvery {
			r.sinceChk = 0
			if err := r.s.checkFree(r.dir, r.id); err != nil {
				return 0, err
			}
		}
	}
	return r.w.Write(p)
}
