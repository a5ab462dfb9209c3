package push

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/jecloud/jecloud/internal/remote"
)

// Rollback asks each target, one after another, to go back to the last
// good version (or to id) and waits until it is live there.
func (c *Client) Rollback(ctx context.Context, id string) error {
	argv := []string{"rollback", c.App, c.Env}
	if id != "" {
		argv = append(argv, id)
	}
	argv = append(argv, "--wait")
	return c.eachWatched(ctx, argv, nil, "rollback")
}

// Restart asks each target, one after another, to restart the live
// version's processes (a deployment of it) and waits until it is live
// again there.
// With typ, only that process type's instances restart.
func (c *Client) Restart(ctx context.Context, typ string) error {
	argv := []string{"restart", c.App, c.Env}
	if typ != "" {
		argv = append(argv, typ)
	}
	return c.eachWatched(ctx, append(argv, "--wait"), nil, "restart")
}

// Follow streams the pending deployment's progress on each target until
// it ends; it fails if a deployment fails.
func (c *Client) Follow(ctx context.Context) error {
	return c.eachWatched(ctx, []string{"status", c.App, c.Env, "--follow"}, nil, "follow")
}

// eachWatched runs a watching agent command on each target in turn (with
// stdin, if not nil) and stops at the first failure.
func (c *Client) eachWatched(ctx context.Context, argv []string, stdin []byte, what string) error {
	for i, t := range c.Targets {
		err := c.watchOne(ctx, t, argv, stdin, what)
		if err == nil {
			continue
		}
		if rest := c.Targets[i+1:]; len(rest) > 0 && ctx.Err() == nil {
			err = fmt.Errorf("%w\nnot done on: %s", err, names(rest))
		}
		return err
	}
	return nil
}

func (c *Client) watchOne(ctx context.Context, t remote.Target, argv []string, stdin []byte, what string) error {
	r, err := c.open(ctx, t)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w while connecting to %s", ErrInterrupted, t.Name())
		}
		return err
	}
	defer r.Close()
	var in io.Reader
	if stdin != nil {
		in = bytes.NewReader(stdin)
	}
	_, err = c.run(ctx, r, argv, in, true)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("%w: stopped watching %s; the %s goes on there.\nFollow it with: %s --follow", ErrInterrupted, t.Name(), what, c.StatusCmd)
	case errors.Is(err, remote.ErrConnectionLost):
		return fmt.Errorf("%w\nSee where it stands with: %s", err, c.StatusCmd)
	}
	return err
}

// Logs shows the app's journal from each target: one after another, or,
// with follow, all at once. With several targets each line is prefixed
// with its host. flags are more of the agent's logs flags (--proxy, --json).
func (c *Client) Logs(ctx context.Context, follow bool, lines int, flags ...string) error {
	argv := append([]string{"logs", c.App, c.Env}, flags...)
	if follow {
		argv = append(argv, "-f")
	}
	if lines > 0 {
		argv = append(argv, "-n", strconv.Itoa(lines))
	}
	if !follow {
		return c.runEach(ctx, argv)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(c.Targets))
	for i, t := range c.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.runOn(ctx, t, argv, len(c.Targets) > 1)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil // Ctrl-C is how one stops following logs
	}
	return errors.Join(errs...)
}

// runEach runs `jeagent ARGV` on each target, one after another, its output
// shown (each line prefixed with the host when there are several), and
// returns the targets' errors joined.
func (c *Client) runEach(ctx context.Context, argv []string) error {
	var errs []error
	for _, t := range c.Targets {
		if err := c.runOn(ctx, t, argv, len(c.Targets) > 1); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// runOn runs `jeagent ARGV` on t, its output shown (prefixed with t's name
// if prefix).
func (c *Client) runOn(ctx context.Context, t remote.Target, argv []string, prefix bool) error {
	r, err := c.open(ctx, t)
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = c.run(ctx, r, argv, nil, prefix)
	return err
}

// Destroy asks each target, one after another, to remove the app
// environment (`jeagent destroy`: units, user, ports, routes, releases;
// the data too with data) and waits until it is gone there.
func (c *Client) Destroy(ctx context.Context, data bool) error {
	argv := []string{"destroy", c.App, c.Env}
	if data {
		argv = append(argv, "--data")
	}
	if c.By != "" {
		argv = append(argv, "--by", c.By)
	}
	// A server where it is gone already (a run cut short before) is done:
	// the others go on. Not on any of them is an error.
	gone := 0
	for i, t := range c.Targets {
		err := c.watchOne(ctx, t, argv, nil, "removal")
		if code, ok := remote.ExitCode(err); ok && code == 3 && ctx.Err() == nil {
			c.say("%s: %s %s is not there: nothing to destroy", t.Name(), c.App, c.Env)
			gone++
			continue
		}
		if err != nil {
			if rest := c.Targets[i+1:]; len(rest) > 0 && ctx.Err() == nil {
				err = fmt.Errorf("%w\nnot done on: %s", err, names(rest))
			}
			return err
		}
	}
	if gone == len(c.Targets) {
		return fmt.Errorf("%s %s is on none of %s: nothing to destroy", c.App, c.Env, names(c.Targets))
	}
	return nil
}
