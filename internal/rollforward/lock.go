package rollforward

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/gofrs/flock"
	"github.com/jecloud/jecloud/internal/state"
)

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
