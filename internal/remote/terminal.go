package remote

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// Terminal is a Runner that can run the agent on a terminal of the server
// (`jepush run` on a terminal): SSH over a TTY.
type Terminal interface {
	// RunTerminal runs the agent with argv on a TTY of the server's, the
	// size of tty, with tty in raw mode meanwhile (Ctrl-C is a byte the
	// remote command's terminal turns into SIGINT), following tty's window
	// size changes. A non-zero exit is an *ExitError.
	RunTerminal(ctx context.Context, argv []string, tty *os.File) error
}

// RunTerminal runs the agent on a TTY (see Terminal).
func (s *SSH) RunTerminal(ctx context.Context, argv []string, tty *os.File) error {
	fd := int(tty.Fd())
	w, h, err := term.GetSize(fd)
	if err != nil {
		w, h = 80, 24
	}
	sess, err := s.client.NewSession()
	if err != nil {
		return s.connErr(fmt.Errorf("open session on %s: %w", s.name, err))
	}
	defer sess.Close()
	termName := os.Getenv("TERM")
	if termName == "" {
		termName = "xterm"
	}
	if err := sess.RequestPty(termName, h, w, ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}); err != nil {
		return s.connErr(fmt.Errorf("ask %s for a terminal: %w", s.name, err))
	}
	old, err := term.MakeRaw(fd)
	if err != nil {
		return fmt.Errorf("raw mode on the terminal: %w", err)
	}
	defer term.Restore(fd, old)
	sess.Stdin, sess.Stdout, sess.Stderr = tty, os.Stdout, os.Stderr
	if err := sess.Start(s.Command(argv)); err != nil {
		return s.connErr(fmt.Errorf("start jeagent on %s: %w", s.name, err))
	}
	stop := watchSize(fd, func(w, h int) { sess.WindowChange(h, w) })
	defer stop()
	waited := make(chan error, 1)
	go func() { waited <- sess.Wait() }()
	select {
	case err = <-waited:
	case <-ctx.Done():
		sess.Close()
		return ctx.Err()
	case <-s.lost:
		sess.Close()
		return s.lostErr
	}
	return s.exitErr(argv, err)
}
