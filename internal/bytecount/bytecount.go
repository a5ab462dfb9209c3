// Package bytecount counts the bytes that go through a writer: the size of
// a stream written once (a bundle received, a backup compressed), known
// without a second pass over it or a stat of where it went. Format prints
// a byte count the one way jepush and the agent both print sizes.
//
// It is its own package so that both the agent's version store and the
// backups can use it: neither has any business importing the other, and
// internal/progress (a terminal display) is not linked into jeagent.
package bytecount

import (
	"fmt"
	"io"
)

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

// Format formats a byte count for people in IEC units, as jepush and the
// agent print sizes: "980 B", "1.0 KiB", "11.7 MiB".
func Format(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
