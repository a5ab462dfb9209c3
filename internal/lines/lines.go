// Package lines passes output on a whole line at a time: a hook's stderr
// into the agent's log with the hook's name in front, an agent's output on
// jepush's terminal with the host's name in front. It is used by both
// programs, so it must build on every system jepush runs on.
package lines

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"
)

// maxLine is the most a Writer keeps while it waits for a newline: a longer
// run of bytes is passed on as a line of its own.
const maxLine = 64 << 10

// Writer splits what is written to it into lines and gives each to Line,
// without its "\n" and the "\r"s before it. Flush gives a last line that
// has no newline. Its methods may be called from several goroutines.
type Writer struct {
	// Line receives each line; an error it returns is Write's.
	Line func(line string) error

	mu   sync.Mutex
	buf  []byte
	last string
}

// Prefixed returns a Writer that writes each line to w with prefix in
// front and a newline after it. Errors writing to w are ignored: the
// output is for people, and the command writing it goes on.
func Prefixed(w io.Writer, prefix string) *Writer {
	return &Writer{Line: func(line string) error {
		io.WriteString(w, prefix+line+"\n")
		return nil
	}}
}

// Write passes on each whole line of what has been written so far.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		if err := w.line(line); err != nil {
			return len(p), err
		}
	}
	if len(w.buf) > maxLine { // a very long line without newline
		line := string(w.buf)
		w.buf = w.buf[:0]
		if err := w.line(line); err != nil {
			return len(p), err
		}
	}
	return len(p), nil
}

// Flush passes on a last line that has no newline.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) == 0 {
		return nil
	}
	line := string(w.buf)
	w.buf = nil
	return w.line(line)
}

// Last returns the last line that was not blank, without the spaces around
// it (a failed command's reason, when it gives no message).
func (w *Writer) Last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

func (w *Writer) line(s string) error {
	s = strings.TrimRight(s, "\r")
	if t := strings.TrimSpace(s); t != "" {
		w.last = t
	}
	return w.Line(s)
}

// Printable returns s as a terminal shows it without obeying it: every
// control character but the tab (C0, DEL and C1: escape sequences that
// move the cursor, erase lines, set the window title or write the
// clipboard with OSC 52) and every byte that is not UTF-8 (a lone 0x9b is
// CSI to some terminals) is written as a visible escape such as \x1b.
// jepush passes what servers send (agent output, hook and npm output,
// reasons in a status) through it before it reaches the user's terminal.
func Printable(s string) string {
	clean := utf8.ValidString(s)
	for _, r := range s {
		if unsafe(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafe(r) && r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafe(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unsafe reports whether a terminal may act on r rather than show it.
func unsafe(r rune) bool {
	return (r < 0x20 && r != '\t') || (r >= 0x7f && r < 0xa0)
}

// PrintableJSON is Printable for JSON text: DEL and the C1 controls, which
// JSON lets stand raw in a string, are written as \u escapes, and bytes
// that are not UTF-8 as \ufffd, so the JSON means the same and a terminal
// is shown it without obeying it. (C0 controls cannot stand raw in valid
// JSON; its encoders escape them.)
func PrintableJSON(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			out = append(out, `\ufffd`...)
		case r >= 0x7f && r < 0xa0:
			out = fmt.Appendf(out, `\u%04x`, r)
		default:
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	return out
}
