package rollforward

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/jecloud/jecloud/internal/state"
)

// Outcome is how a deployment ended.
type Outcome struct {
	Live   bool
	Reason string // why it is not live
}

// Follow waits for the deployment of version requested at requested to
// end, copying the app environment's log lines (from byte offset logFrom
// of the roll-forward log) to out. Every few seconds, if the deployment is
// still pending and no run holds the lock, it calls kick to start one.
//
// It looks again whenever app.json or the log changes (inotify), so it
// sees the end the moment the roll-forward writes it, and once a second
// in any case; where the kernel cannot watch, it looks every 50 ms.
func Follow(ctx context.Context, l state.Layout, ae state.AppEnv, version string, requested time.Time,
	logFrom int64, out io.Writer, kick func() error) (Outcome, error) {
	f := newFollower(l, ae, logFrom, out, kick)
	defer f.close()
	var lastBackoff string
	// Dates have whole seconds: a failed attempt of the same version asked
	// for in the same second looks like this request's failure. Those seen
	// while this request is pending are earlier ones.
	stale := 0
	for {
		f.tail.copy(out)
		var a state.App
		err := state.Read(l.AppJSON(ae), &a)
		switch {
		case err != nil:
			fmt.Fprintf(out, "waiting: %v\n", err)
		case a.Deployment == nil || a.Deployment.Version != version || !a.Deployment.RequestDate.Equal(requested):
			f.tail.copy(out)
			return outcome(&a, version, requested, stale), nil
		default:
			stale = len(failuresOf(&a, version, requested))
			if b := a.Backoff; b != nil {
				msg := fmt.Sprintf("waiting: %s failed %d time(s), next try at %s: %s", b.Step, b.Failures, b.NextTry.Format(time.RFC3339), b.LastError)
				if msg != lastBackoff {
					fmt.Fprintln(out, msg)
					lastBackoff = msg
				}
			} else if err := f.kickIfIdle(); err != nil {
				return Outcome{}, err
			}
		}
		if err := f.wait(ctx); err != nil {
			return Outcome{}, err
		}
	}
}

// follower is what Follow and FollowDestroy share: the app environment's
// log lines copied to out, a look whenever app.json or the log changes
// (inotify) and once a second anyway (every 50 ms where the kernel cannot
// watch), and a roll-forward kicked now and then while none runs.
type follower struct {
	l        state.Layout
	tail     *logTail
	changed  <-chan struct{}
	stop     func()
	tick     *time.Ticker
	kick     func() error
	lastKick time.Time
}

func newFollower(l state.Layout, ae state.AppEnv, logFrom int64, out io.Writer, kick func() error) *follower {
	f := &follower{l: l, tail: &logTail{path: l.LogFile(), off: logFrom, match: " " + ae.String() + ": "}, kick: kick, lastKick: time.Now()}
	f.changed, f.stop = watch(filepath.Dir(l.AppJSON(ae)), filepath.Dir(l.LogFile()))
	period := time.Second
	if f.changed == nil {
		period = 50 * time.Millisecond
	}
	f.tick = time.NewTicker(period)
	return f
}

func (f *follower) close() { f.tick.Stop(); f.stop() }

// kickIfIdle starts a roll-forward if none holds the lock and the last
// kick is more than 2 s old (nil kick: never).
func (f *follower) kickIfIdle() error {
	if f.kick == nil || time.Since(f.lastKick) <= 2*time.Second || Locked(f.l) {
		return nil
	}
	f.lastKick = time.Now()
	return f.kick()
}

// wait returns at the next tick or change, or with ctx's error.
func (f *follower) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-f.tick.C:
	case <-f.changed:
	}
	return nil
}

// watch returns a channel that receives when something in one of dirs
// changes (a nil channel if the first cannot be watched: the caller
// polls), and a function that stops the watching. A directory that does
// not exist yet (the log's, before the first run) is left out.
func watch(dirs ...string) (<-chan struct{}, func()) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, func() {}
	}
	for i, d := range dirs {
		if err := w.Add(d); err != nil && i == 0 {
			w.Close()
			return nil, func() {}
		}
	}
	changed := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case _, ok := <-w.Events:
				if !ok {
					return
				}
			case _, ok := <-w.Errors: // an overflow: look anyway
				if !ok {
					return
				}
			}
			select {
			case changed <- struct{}{}:
			default: // a look is due already
			}
		}
	}()
	return changed, func() { w.Close(); <-done }
}

// failuresOf returns the failed deployments of version requested at requested.
func failuresOf(a *state.App, version string, requested time.Time) []state.Failure {
	var out []state.Failure
	for _, f := range a.RecentFailedDeployments {
		if f.Version == version && f.RequestDate.Equal(requested) {
			out = append(out, f)
		}
	}
	return out
}

// outcome says how the deployment of version requested at requested ended;
// the first stale failures of that version and date are earlier attempts.
func outcome(a *state.App, version string, requested time.Time, stale int) Outcome {
	if fs := failuresOf(a, version, requested); len(fs) > stale {
		return Outcome{Reason: fs[len(fs)-1].Reason}
	}
	if a.CurrentVersion == version {
		return Outcome{Live: true}
	}
	if a.Deployment != nil {
		return Outcome{Reason: "superseded by a newer deployment of " + a.Deployment.Version}
	}
	return Outcome{Reason: "superseded by a newer deployment (see aborted_deployment_versions)"}
}

// LogSize is the current end of the roll-forward log, where a follower starts.
func LogSize(l state.Layout) int64 {
	if fi, err := os.Stat(l.LogFile()); err == nil {
		return fi.Size()
	}
	return 0
}

// logTail copies new lines of the log that contain match.
type logTail struct {
	path  string
	off   int64
	match string
}

func (t *logTail) copy(out io.Writer) {
	f, err := os.Open(t.path)
	if err != nil {
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() < t.off {
		t.off = 0 // rotated
	}
	if _, err := f.Seek(t.off, io.SeekStart); err != nil {
		return
	}
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return // a partial line is read again next time
		}
		t.off += int64(len(line))
		if i := strings.Index(line, t.match); i >= 0 {
			io.WriteString(out, line[i+len(t.match):])
		}
	}
}
