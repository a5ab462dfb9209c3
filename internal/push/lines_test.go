package push

import (
	"bytes"
	"testing"
)

func TestPrefixed(t *testing.T) {
	var out bytes.Buffer
	c := &Client{}
	p := c.prefixed(&out, "web1: ")
	p.Write([]byte("one\ntw"))
	p.Write([]byte("o\r\nthr\ree"))
	if out.String() != "web1: one\nweb1: two\n" {
		t.Errorf("got %q", out.String())
	}
	p.Flush()
	if out.String() != "web1: one\nweb1: two\nweb1: three\n" {
		t.Errorf("after Flush: %q", out.String())
	}
}

func TestTail(t *testing.T) {
	var tl tail
	tl.Write([]byte("hook output\n\ndeploy of abc failed: "))
	tl.Write([]byte("out of disk space\n  \n"))
	if got := tl.Last(); got != "deploy of abc failed: out of disk space" {
		t.Errorf("Last = %q", got)
	}
	tl.Write([]byte("no newline at the end"))
	if got := tl.Last(); got != "no newline at the end" {
		t.Errorf("Last = %q", got)
	}
	for i := 0; i < 50; i++ {
		tl.Write([]byte("x\n"))
	}
	if n := len(tl.lines); n != tailLines {
		t.Errorf("kept %d lines", n)
	}
}
