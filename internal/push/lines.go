package push

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// prefixWriter writes each line it is given to w with a prefix (the host's
// name), a whole line at a time, so that lines from stdout and stderr do
// not mix mid-line. Flush writes a last unfinished line.
type prefixWriter struct {
	mu     *sync.Mutex // shared by the writers of one terminal
	w      io.Writer
	prefix string
	buf    []byte
}

func newPrefixWriter(mu *sync.Mutex, w io.Writer, prefix string) *prefixWriter {
	return &prefixWriter{mu: mu, w: w, prefix: prefix}
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		if err := p.emit(p.buf[:i+1]); err != nil {
			return len(b), err
		}
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

func (p *prefixWriter) emit(line []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	// A bare \r (progress drawn by a hook) would overwrite the prefix.
	line = bytes.ReplaceAll(line, []byte("\r"), nil)
	_, err := p.w.Write(append([]byte(p.prefix), line...))
	return err
}

// Flush writes what is left of an unfinished line.
func (p *prefixWriter) Flush() {
	if len(p.buf) > 0 {
		p.emit(append(p.buf, '\n'))
		p.buf = nil
	}
}

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
	l = strings.TrimSpace(strings.ReplaceAll(l, "\r", ""))
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
