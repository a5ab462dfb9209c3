// Package bytecount counts the bytes that go through a writer: the size of
// a stream written once (a bundle received, a backup compressed), known
// without a second pass over it or a stat of where it went.
//
// It is its own package so that both the agent's version store and the
// backups can use it: neither has any business importing the other, and
// internal/progress (a terminal display) is not linked into jeagent.
package bytecount

import "io"

// Writer writes to W and counts in N the bytes W accepted.
type Writer struct {
	W io.Writer
	N int64
}

func (c *Writer) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	c.N += int64(n)
	return n, err
}
