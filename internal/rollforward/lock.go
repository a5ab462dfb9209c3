package rollforward

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/gofrs/flock"
	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/state"
)

// RunLocked takes the lock and runs until nothing is left to do. If
// another process holds the lock, it returns ok=false and that process's
// pid: that run will do the work. A request written after a run's last
// plan but before it lets the lock go is left to it that way, so after
// letting go RunLocked plans once more, and goes on if there is work.
func (e *Engine) RunLocked(ctx context.Context) (ok bool, holder int, err error) {
	for {
		unlock, ok, holder, err := Lock(e.Layout)
		if err != nil || !ok {
			return ok, holder, err
		}
		_, err = atomicfile.CleanTemps(e.Layout.Sys())
		if err == nil {
			_, err = e.Run(ctx)
		}
		e.fault("run:unlocking")
		unlock()
		if err != nil {
			return true, 0, err
		}
		steps, _, err := e.Plan()
		if err != nil || len(steps) == 0 {
			return true, 0, err
		}
	}
}

// Lock takes the roll-forward lock (a flock on sys/pids/rollforward.pid)
// and writes this process's pid into the file. If another process holds
// it, Lock returns ok=false and that process's pid (0 if unknown). The lock
// goes with the process: a pid file left by a killed run is harmless.
func Lock(l state.Layout) (unlock func(), ok bool, holder int, err error) {
	if err := os.MkdirAll(l.PIDDir(), 0o755); err != nil {
		return nil, false, 0, err
	}
	fl := flock.New(l.PIDFile())
	ok, err = fl.TryLock()
	if err != nil {
		return nil, false, 0, fmt.Errorf("lock %s: %w", l.PIDFile(), err)
	}
	if !ok {
		return nil, false, LockHolder(l), nil
	}
	if err := os.WriteFile(l.PIDFile(), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		fl.Unlock()
		return nil, false, 0, err
	}
	return func() { fl.Unlock() }, true, 0, nil
}

// LockHolder returns the pid written in the lock file (0 if none).
func LockHolder(l state.Layout) int {
	b, err := os.ReadFile(l.PIDFile())
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Locked reports whether a roll-forward holds the lock now.
func Locked(l state.Layout) bool {
	fl := flock.New(l.PIDFile())
	ok, err := fl.TryRLock()
	if err != nil {
		return false
	}
	if ok {
		fl.Unlock()
	}
	return !ok
}
