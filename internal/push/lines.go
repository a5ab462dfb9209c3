package push

import (
	"strings"
	"sync"

	"github.com/jecloud/jecloud/internal/lines"
)

// tail keeps the last lines written to it, for error messages. Its zero
// value is ready; lines.Writer splits what is written into lines.
type tail struct {
	mu    sync.Mutex
	w     *lines.Writer
	lines []string
}

const tailLines = 20

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	if t.w == nil {
		t.w = &lines.Writer{Line: t.add}
	}
	w := t.w
	t.mu.Unlock()
	return w.Write(b)
}

// add keeps line (lines.Writer calls it with each one).
func (t *tail) add(l string) error {
	l = lines.Printable(strings.TrimSpace(strings.ReplaceAll(l, "\r", "")))
	if l == "" {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, l)
	if len(t.lines) > tailLines {
		t.lines = t.lines[1:]
	}
	return nil
}

// Last returns the last non-empty line, or "".
func (t *tail) Last() string {
	t.mu.Lock()
	w := t.w
	t.mu.Unlock()
	if w != nil {
		w.Flush() // a last line without its newline
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return ""
	}
	return t.lines[len(t.lines)-1]
}

// All returns the lines kept, joined.
func (t *tail) All() string {
	t.Last()
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
