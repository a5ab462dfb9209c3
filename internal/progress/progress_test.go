package progress

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// clock is a fake time source advanced by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Unix(1000, 0)} }

func TestPlain(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	b := start(&out, false, "uploading to web1", 12_300_000, c.now)
	if _, err := io.Copy(io.Discard, b.Reader(strings.NewReader(strings.Repeat("x", 12_300_000)))); err != nil {
		t.Fatal(err)
	}
	c.advance(1200 * time.Millisecond)
	b.Done("")
	b.Done("") // twice is once
	if want := "uploading to web1 11.7 MiB ... done in 1.2 s (9.8 MiB/s)\n"; out.String() != want {
		t.Errorf("got  %q\nwant %q", out.String(), want)
	}

	out.Reset()
	b = start(&out, false, "bundling ./app", 0, c.now)
	b.Set(3, 1500)
	c.advance(20 * time.Second)
	b.Fail()
	if want := "bundling ./app ... failed in 20 s\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

func TestInteractive(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	b := start(&out, true, "uploading to web1", 1024, c.now)
	if out.Len() != 0 {
		t.Errorf("nothing is drawn before progress: %q", out.String())
	}
	c.advance(time.Second)
	b.Add(512)
	b.Add(100) // within redrawEvery: not drawn
	if want := "\ruploading to web1 [==========          ]  50% 512 B / 1.0 KiB  512 B/s\x1b[K"; out.String() != want {
		t.Errorf("got  %q\nwant %q", out.String(), want)
	}
	out.Reset()
	c.advance(time.Second)
	b.Add(412)
	if !strings.Contains(out.String(), "100% 1.0 KiB / 1.0 KiB") {
		t.Errorf("got %q", out.String())
	}
	out.Reset()
	b.Done("version abc")
	if want := "\r\x1b[Kuploading to web1 1.0 KiB ... done in 2.0 s (512 B/s): version abc\n"; out.String() != want {
		t.Errorf("got  %q\nwant %q", out.String(), want)
	}
	b.Add(10) // after the end: nothing
	if strings.Count(out.String(), "\n") != 1 {
		t.Errorf("drawn after Done: %q", out.String())
	}
}

func TestFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{400 * time.Millisecond: "0.4 s", 12 * time.Second: "12 s", 185 * time.Second: "3 min 5 s"} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%s) = %q, want %q", d, got, want)
		}
	}
}
