package mail

import (
	"context"
	"fmt"
	"io"
	"net/smtp"
	"strings"
)

// reroute moves the environment's waiting mail to its current provider.
// Postfix keeps in each queued message the content_filter it came in with,
// provider included, so after a change of provider the deferred (or held)
// messages would still go to the old one: each is held, re-submitted as it
// is through the environment's listener (which adds its Received line),
// then deleted. A message that cannot be re-submitted is released and stays
// where it was. Delivery is at least once: a crash between re-submission
// and deletion leaves the old copy held, re-sent at the next deploy.
//
// With legacy (e owns a transport of its name before issue #17), the
// messages queued for that transport are moved too; it returns how many
// of them are left (being delivered, or not yet in the queue proper), so
// that the old transport stays until none is.
func (h *Hook) reroute(ctx context.Context, r *StatusReader, e env, legacy bool, log io.Writer) (int, error) {
	q := r.readQueue(ctx)
	if q.Err != nil {
		return 0, q.Err
	}
	want := e.Name() + ":" + e.Relay.NextHop()
	moved, left := 0, 0
	for _, m := range q.Messages {
		old := legacy && m.Transport == e.legacyName()
		if !old && (m.Transport != e.Name() || m.Filter == want) {
			continue
		}
		if (m.Queue != "deferred" && m.Queue != "hold") || len(m.Recipients) == 0 {
			if old {
				left++
			}
			continue
		}
		if _, err := r.Run(ctx, "postsuper", "-h", m.ID); err != nil {
			return 0, err
		}
		content, err := r.Run(ctx, "postcat", "-bh", "-q", m.ID)
		if err == nil {
			err = submit(e.Listen(), m.Sender, m.Recipients, content)
		}
		if err != nil {
			r.Run(ctx, "postsuper", "-H", m.ID)
			return 0, fmt.Errorf("re-send queued message %s of %s/%s through the new provider: %w (it stays queued for %s)", m.ID, e.App, e.Env, err, m.Filter)
		}
		if _, err := r.Run(ctx, "postsuper", "-d", m.ID, "hold"); err != nil {
			return 0, fmt.Errorf("message %s was re-sent, but its old copy is still held: %w (delete it: postsuper -d %s hold)", m.ID, err, m.ID)
		}
		moved++
	}
	if moved > 0 {
		fmt.Fprintf(log, "mail for %s/%s: %d queued message(s) re-sent through the new provider %s\n", e.App, e.Env, moved, e.Relay)
	}
	return left, nil
}

// submit sends one message, as it is, to the SMTP server at addr.
func submit(addr, from string, to []string, content []byte) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return err
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	// postcat prints lines ending in \n; the writer sends them as \r\n
	// and dot-stuffs them.
	if _, err := io.Copy(w, strings.NewReader(string(content))); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
