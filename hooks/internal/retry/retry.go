// Package retry is the wait the built-in hooks do for a service they have
// just (re)started: ask until it answers, the context ends or the time is
// up.
package retry

import (
	"context"
	"time"
)

// Until calls try at once, then every interval, until it returns nil, ctx
// ends or timeout has passed; it returns try's last error (ctx's if ctx
// ended first).
func Until(ctx context.Context, timeout, interval time.Duration, try func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := try()
		if err == nil || !time.Now().Add(interval).Before(deadline) {
			return err
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
