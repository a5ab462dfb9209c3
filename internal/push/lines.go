package push

import (
	"github.com/jecloud/jecloud/internal/lines"

	"bytes"
	"strings"
	"sync"
)

// tail keeps the last lines written to it, for error messages.
type tail struct {
	mu    sync.Mutex
	lines []string
	part  []byte
}

const tailLines = 20

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, b...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		t.add(string(t.part[:i]))
		t.part = t.part[i+1:]
	}
	if len(t.part) > 64<<10 { // a runaway line
		t.part = t.part[len(t.part)-64<<10:]
	}
	return len(b), nil
}

func (t *tail) add(l string) {
	l = lines.Printable(strings.TrimSpace(strings.ReplaceAll(l, "\r", "")))
	if l == "" {
		return
	}
	t.lines = append(t.lines, l)
	if len(t.lines) > tailLines {
		t.lines = t.lines[1:]
	}
}

// Last returns the last non-empty line, or "".
func (t *tail) Last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.part) > 0 {
		t.add(string(t.part))
		t.part = nil
	}
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
