// Package accesslog reads the front door's access log of one app
// environment out of HAProxy's journal: one JSON object per request, in
// the shape of Caddy's access log (which wrote it before HAProxy took
// ports 80 and 443), under the logger proxy.AccessLogger(app, env), among
// its other lines. Collect and Copy keep that logger's entries, and each is printed
// as one readable line (time, client, method, host, URI, status, duration,
// size), or as the JSON it was. See docs/routing.md#logs.
package accesslog

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jecloud/jecloud/internal/bytecount"
	"github.com/jecloud/jecloud/internal/lines"
)

// Entry is one request as the front door logs it (HAProxy's log-format
// in routes; Caddy 2.6's access log has the same shape).
type Entry struct {
	Logger  string          `json:"logger"`
	TS      json.RawMessage `json:"ts"` // seconds since 1970 (a float), or RFC 3339
	Request struct {
		RemoteIP string `json:"remote_ip"`
		Proto    string `json:"proto"`
		Method   string `json:"method"`
		Host     string `json:"host"`
		URI      string `json:"uri"`
	} `json:"request"`
	Duration json.RawMessage `json:"duration"` // seconds (a float), or a Go duration
	// DurationMS is HAProxy's total time (%Ta), in milliseconds.
	DurationMS *int64 `json:"duration_ms"`
	Size       int64  `json:"size"`
	Status     int    `json:"status"`
}

// Parse reads one journal line; ok is false unless it is an entry of logger.
func Parse(line []byte, logger string) (e Entry, ok bool) {
	// Cheap test first: the proxy logs much else, and other apps' requests.
	if !strings.Contains(string(line), `"logger":"`+logger+`"`) {
		return e, false
	}
	if err := json.Unmarshal(line, &e); err != nil || e.Logger != logger {
		return e, false
	}
	return e, true
}

// Time is when the request was logged (zero if the entry does not say).
func (e Entry) Time() time.Time {
	var f float64
	if json.Unmarshal(e.TS, &f) == nil && f > 0 && f < math.MaxInt32*4 {
		sec, frac := math.Modf(f)
		// To the microsecond: a float's last digits are noise
		// (HAProxy's 1796434933.738 would print as .737).
		return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC()
	}
	var s string
	if json.Unmarshal(e.TS, &s) == nil {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// Took is how long the front door took to answer.
func (e Entry) Took() time.Duration {
	if e.DurationMS != nil {
		return time.Duration(*e.DurationMS) * time.Millisecond
	}
	var f float64
	if json.Unmarshal(e.Duration, &f) == nil {
		return time.Duration(f * float64(time.Second))
	}
	var s string
	if json.Unmarshal(e.Duration, &s) == nil {
		if d, err := time.ParseDuration(s); err == nil {
			return d
		}
	}
	return 0
}

// String is the entry as one line. What came from the network (host, URI)
// is made printable: no control characters reach the terminal.
func (e Entry) String() string {
	ts := "-"
	if t := e.Time(); !t.IsZero() {
		ts = t.Format("2006-01-02T15:04:05.000Z")
	}
	return fmt.Sprintf("%s %s %s %s %s %d %s %s", ts, field(e.Request.RemoteIP), field(e.Request.Method),
		field(e.Request.Host), field(e.Request.URI), e.Status, round(e.Took()), bytecount.Format(e.Size))
}

func field(s string) string {
	if s == "" {
		return "-"
	}
	return strings.ReplaceAll(lines.Printable(s), " ", "%20")
}

// round keeps three significant digits or so: 1.23ms, 45.6µs, 2.01s.
func round(d time.Duration) time.Duration {
	for _, r := range []time.Duration{time.Second, time.Millisecond, time.Microsecond} {
		if d >= r {
			return d.Round(r / 100)
		}
	}
	return d
}

// Line is one entry and the JSON line it was read from.
type Line struct {
	Entry
	Raw []byte
}

// Write writes l to w: readable, or raw (the JSON as it was, one object a
// line, with nothing a terminal would obey).
func (l Line) Write(w io.Writer, raw bool) error {
	var err error
	if raw {
		_, err = fmt.Fprintf(w, "%s\n", lines.PrintableJSON(l.Raw))
	} else {
		_, err = fmt.Fprintln(w, l.Entry)
	}
	return err
}

func scanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return sc
}

// Collect reads the entries of logger from journal lines (MESSAGE only:
// journalctl -o cat) and returns them oldest first: journalctl prints the
// last N matches of --grep newest first.
func Collect(r io.Reader, logger string) ([]Line, error) {
	var out []Line
	sc := scanner(r)
	for sc.Scan() {
		if e, ok := Parse(sc.Bytes(), logger); ok {
			out = append(out, Line{Entry: e, Raw: slices.Clone(sc.Bytes())})
		}
	}
	slices.SortStableFunc(out, func(a, b Line) int { return a.Time().Compare(b.Time()) })
	return out, sc.Err()
}

// Copy streams the entries of logger from r to w as they come (a followed
// journal), skipping those logged at or before after (already shown).
func Copy(w io.Writer, r io.Reader, logger string, raw bool, after time.Time) error {
	sc := scanner(r)
	for sc.Scan() {
		e, ok := Parse(sc.Bytes(), logger)
		if !ok || !e.Time().After(after) {
			continue
		}
		if err := (Line{Entry: e, Raw: sc.Bytes()}).Write(w, raw); err != nil {
			return err
		}
	}
	return sc.Err()
}
