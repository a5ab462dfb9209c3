package rollforward

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"

	"github.com/jecloud/jecloud/internal/lines"
	"github.com/jecloud/jecloud/internal/plan"
	"github.com/jecloud/jecloud/internal/state"
)

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// appLog returns a writer whose lines go to the log as the app
// environment's, with the time and "APP/ENV: " in front.
func (e *Engine) appLog(ae state.AppEnv) io.Writer {
	return &lines.Writer{Line: func(line string) error { e.logf(ae, "%s", line); return nil }}
}

// faultReader calls fn once after at bytes have been read (a crash in the
// middle of an extraction, for tests).
type faultReader struct {
	r    io.Reader
	at   int64
	n    int64
	fn   func()
	done bool
}

func (f *faultReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	f.n += int64(n)
	if !f.done && f.n >= f.at {
		f.done = true
		f.fn()
	}
	return n, err
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// route loads the front door's configuration; a success ends a backoff of
// the step.
func (e *Engine) route(ctx context.Context) error {
	if e.Route == nil {
		return errors.New("this roll-forward cannot load the front door's configuration")
	}
	notes, err := e.Route(ctx)
	for _, n := range notes {
		e.logf(ServerAppEnv, "front door: %s", n)
	}
	if err != nil {
		return err
	}
	_, err = state.UpdateServer(e.Layout.ServerJSON(), func(s *state.Server) error {
		if s.Backoff != nil && s.Backoff.Step == plan.Route {
			s.Backoff = nil
		}
		return nil
	})
	return err
}
