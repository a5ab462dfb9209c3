// Package progress shows how a long step is going: on a terminal, one line
// redrawn in place with bytes, rate and (when the total is known) a bar;
// elsewhere (CI logs, pipes) a plain line when the step starts and when it
// ends.
//
// It is small on purpose: jepush needs one bar for bytes and rate, and a
// plain-lines mode that a library would not give anyway, so a few dozen
// lines are clearer than github.com/schollz/progressbar and its three
// dependencies and terminal-width heuristics.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/jecloud/jecloud/internal/bytecount"
)

// redrawEvery limits how often the bar is redrawn.
const redrawEvery = 100 * time.Millisecond

// Bar reports one step. Its methods may be called from several goroutines.
type Bar struct {
	w           io.Writer
	interactive bool
	label       string
	total       int64

	mu    sync.Mutex
	n     int64
	items int
	start time.Time
	drawn time.Time
	ended bool
	now   func() time.Time
}

// Start begins a step: label says what ("uploading to web1"), total is its
// size in bytes (0 if unknown). In plain mode it writes the label and size
// now, without a newline, and the rest of the line when the step ends.
func Start(w io.Writer, interactive bool, label string, total int64) *Bar {
	return start(w, interactive, label, total, time.Now)
}

func start(w io.Writer, interactive bool, label string, total int64, now func() time.Time) *Bar {
	b := &Bar{w: w, interactive: interactive, label: label, total: total, now: now, start: now()}
	if !interactive {
		if total > 0 {
			fmt.Fprintf(w, "%s %s ...", label, bytecount.Format(total))
		} else {
			fmt.Fprintf(w, "%s ...", label)
		}
	}
	return b
}

// Add counts n more bytes.
func (b *Bar) Add(n int64) { b.update(func() { b.n += n }) }

// Set sets the bytes and items (files) done so far.
func (b *Bar) Set(items int, n int64) { b.update(func() { b.items, b.n = items, n }) }

func (b *Bar) update(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f()
	if !b.interactive || b.ended {
		return
	}
	if t := b.now(); t.Sub(b.drawn) >= redrawEvery {
		b.drawn = t
		b.draw()
	}
}

// draw redraws the line in place (b.mu held).
func (b *Bar) draw() {
	var s strings.Builder
	fmt.Fprintf(&s, "\r%s ", b.label)
	if b.total > 0 {
		frac := min(float64(b.n)/float64(b.total), 1)
		const width = 20
		full := int(frac * width)
		fmt.Fprintf(&s, "[%s%s] %3d%% %s / %s", strings.Repeat("=", full), strings.Repeat(" ", width-full), int(frac*100), bytecount.Format(b.n), bytecount.Format(b.total))
	} else {
		if b.items > 0 {
			fmt.Fprintf(&s, "%d files, ", b.items)
		}
		s.WriteString(bytecount.Format(b.n))
	}
	if r := b.rate(); r != "" {
		fmt.Fprintf(&s, "  %s", r)
	}
	s.WriteString("\x1b[K") // clear the rest of the line
	io.WriteString(b.w, s.String())
}

func (b *Bar) rate() string {
	d := b.now().Sub(b.start)
	if d < 200*time.Millisecond || b.n == 0 {
		return ""
	}
	return bytecount.Format(int64(float64(b.n)/d.Seconds())) + "/s"
}

// Reader returns r counting what is read from it into the bar.
func (b *Bar) Reader(r io.Reader) io.Reader { return &reader{r, b} }

type reader struct {
	r io.Reader
	b *Bar
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.b.Add(int64(n))
	}
	return n, err
}

// Done ends the step: "LABEL SIZE ... done in 1.2 s (9.8 MiB/s)", and
// ": detail" if detail is not empty.
func (b *Bar) Done(detail string) { b.end("done", detail) }

// Fail ends the step without success (the caller reports why).
func (b *Bar) Fail() { b.end("failed", "") }

func (b *Bar) end(word, detail string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return
	}
	b.ended = true
	d := b.now().Sub(b.start)
	var s strings.Builder
	if b.interactive {
		s.WriteString("\r\x1b[K")
		s.WriteString(b.label)
		if b.total > 0 {
			fmt.Fprintf(&s, " %s", bytecount.Format(b.total))
		}
		s.WriteString(" ...")
	}
	fmt.Fprintf(&s, " %s in %s", word, Duration(d))
	if word == "done" && b.n > 0 && d >= 10*time.Millisecond {
		fmt.Fprintf(&s, " (%s/s)", bytecount.Format(int64(float64(b.n)/d.Seconds())))
	}
	if detail != "" {
		s.WriteString(": " + detail)
	}
	s.WriteString("\n")
	io.WriteString(b.w, s.String())
}

// Duration formats d for people: "0.4 s", "12 s", "3 min 5 s".
func Duration(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	default:
		return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
	}
}
