//go:build unix

package remote

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

// watchSize calls fn with the terminal's size whenever it changes
// (SIGWINCH) until the returned function is called.
func watchSize(fd int, fn func(w, h int)) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-ch:
				if w, h, err := term.GetSize(fd); err == nil {
					fn(w, h)
				}
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}
