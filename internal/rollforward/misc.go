package rollforward

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"sync"

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
	return &lineWriter{fn: func(line string) { e.logf(ae, "%s", line) }}
}

type lineWriter struct {
	mu  sync.Mutex
	buf []byte
	fn  func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.fn(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
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
