package push

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/jecloud/jecloud/internal/appspec"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jecloud/jecloud/internal/bundle"
	"github.com/jecloud/jecloud/internal/bytecount"
	"github.com/jecloud/jecloud/internal/progress"
	"github.com/jecloud/jecloud/internal/remote"
	"github.com/jecloud/jecloud/internal/version"
)

// Options tune Push.
type Options struct {
	// Timeout is passed to `jeagent deploy --timeout` (0: the agent's default).
	Timeout time.Duration
	// Force deploys the version even when it is already live.
	Force bool
	// Requested, if set, is told the version ID before anything is sent
	// (over SSH to EC2 servers, the global state records the request and
	// its history there; --json reports on that version), by every push.
	Requested func(ctx context.Context, id string) error
}

// Push bundles dir and deploys it to every target, one after another,
// stopping at the first failure. It returns nil only when the version is
// live on every target. The version ID is computed first without
// compressing (bundle.Hash): a server that has the version costs no
// compression and no upload.
func (c *Client) Push(ctx context.Context, dir string, o Options) error {
	if c.Global != nil {
		return c.pushGlobal(ctx, dir, o)
	}
	id, err := c.hash(ctx, dir)
	if err != nil {
		return err
	}
	if o.Requested != nil {
		if err := o.Requested(ctx, id); err != nil {
			return err
		}
	}
	c.sayPlacement()
	b := &lazyBundle{c: c, dir: dir, id: id}
	defer b.remove()
	defer b.bg.Wait() // keeping the version pushed, for the next push
	for i, t := range c.Targets {
		err := c.pushRotated(ctx, t, b, id, o)
		if err == nil {
			continue
		}
		var b strings.Builder
		b.WriteString(err.Error())
		if i > 0 {
			fmt.Fprintf(&b, "\nlive on: %s", names(c.Targets[:i]))
		}
		if rest := c.Targets[i+1:]; len(rest) > 0 {
			fmt.Fprintf(&b, "\nnot deployed: %s", names(rest))
		}
		return &pushError{msg: b.String(), err: err}
	}
	c.say("%s", c.style("ok", fmt.Sprintf("%s %s: version %s %s", c.App, c.Env, id, appspec.Outcome(dir, " on "+names(c.Targets)))))
	c.carryRouting(ctx)
	c.sayServed(ctx)
	return nil
}

// lazyBundle is the compressed bundle, written the first time a target
// lacks the version.
type lazyBundle struct {
	c       *Client
	dir, id string
	f       *os.File
	size    int64
	tree    *bundle.Manifest // Scan of dir, when a delta was considered
	bg      sync.WaitGroup   // keeping what was pushed (kept.go)
}

func (b *lazyBundle) get(ctx context.Context) (*os.File, int64, error) {
	if b.f != nil {
		return b.f, b.size, nil
	}
	f, err := os.CreateTemp("", "jepush-*.tar.zst")
	if err != nil {
		return nil, 0, fmt.Errorf("bundle: %w", err)
	}
	id, size, err := b.c.bundle(ctx, b.dir, f)
	if err == nil && id != b.id {
		err = fmt.Errorf("%s changed while jepush was reading it (version %s, then %s): push again", b.dir, b.id, id)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, err
	}
	b.f, b.size = f, size
	return f, size, nil
}

func (b *lazyBundle) remove() {
	if b.f != nil {
		b.f.Close()
		os.Remove(b.f.Name())
	}
}

// hash computes dir's version ID without compressing. A tree whose files'
// sizes and times have not changed since the last push from this machine
// is not read again (bundle.CachedHash in c.TreeCache; "" turns it off).
func (c *Client) hash(ctx context.Context, dir string) (string, error) {
	bar := progress.Start(c.Stderr, c.Interactive, "reading "+dir, 0)
	var files int
	var bytes int64
	id, cached, err := bundle.CachedHash(dir, c.TreeCache, bundle.WriteOptions{Progress: func(n int, b int64) {
		files, bytes = n, b
		bar.Set(n, b)
	}})
	if err == nil && cached {
		bar.Done("unchanged since it was last read: version " + id)
		return id, nil
	}
	if err != nil {
		bar.Fail()
		return "", fmt.Errorf("bundle %s: %w", dir, err)
	}
	if ctx.Err() != nil {
		bar.Fail()
		return "", fmt.Errorf("%w while reading %s: nothing was sent", ErrInterrupted, dir)
	}
	bar.Done(fmt.Sprintf("%d file%s, %s, version %s", files, plural(files), bytecount.Format(bytes), id))
	return id, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

type pushError struct {
	msg string
	err error
}

func (e *pushError) Error() string { return e.msg }
func (e *pushError) Unwrap() error { return e.err }

// bundle writes dir's bundle to f and returns its ID and size.
func (c *Client) bundle(ctx context.Context, dir string, f *os.File) (string, int64, error) {
	bar := progress.Start(c.Stderr, c.Interactive, "bundling "+dir, 0)
	var files int
	var bytes int64
	id, err := bundle.Write(dir, ctxWriter{ctx, f}, bundle.WriteOptions{Progress: func(n int, b int64) {
		files, bytes = n, b
		bar.Set(n, b)
	}})
	if err != nil {
		bar.Fail()
		if ctx.Err() != nil {
			return "", 0, fmt.Errorf("%w while bundling: nothing was sent", ErrInterrupted)
		}
		return "", 0, fmt.Errorf("bundle %s: %w", dir, err)
	}
	st, err := f.Stat()
	if err != nil {
		bar.Fail()
		return "", 0, fmt.Errorf("bundle: %w", err)
	}
	bar.Done(fmt.Sprintf("%d file%s, %s (%s compressed), version %s", files, plural(files), bytecount.Format(bytes), bytecount.Format(st.Size()), id))
	return id, st.Size(), nil
}

// ctxWriter fails writes once ctx is done, which stops bundle.Write.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (w ctxWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return w.w.Write(p)
}

// pushOne uploads the bundle to t unless it has it, and deploys it there.
func (c *Client) pushOne(ctx context.Context, t remote.Target, b *lazyBundle, id string, o Options) error {
	name := t.Name()
	r, err := c.open(ctx, t)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w while connecting to %s: nothing was deployed there", ErrInterrupted, name)
		}
		return err
	}
	defer r.Close()

	has, ai, err := c.has(ctx, r, id)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: nothing was deployed on %s", ErrInterrupted, name)
		}
		return err
	}
	if has {
		c.say("%s already has version %s: not uploading", name, id)
	} else if sent, err := c.sendChanges(ctx, r, b, id, ai); err != nil {
		return err
	} else if !sent {
		f, size, err := b.get(ctx)
		if err != nil {
			return err
		}
		if err := c.upload(ctx, r, f, size, id); err != nil {
			return err
		}
		c.keepWhole(b, id)
	}

	argv := []string{"deploy", c.App, c.Env, id, "--wait"}
	if o.Force {
		argv = append(argv, "--force")
	}
	argv = c.withBy(ctx, r, argv)
	if o.Timeout > 0 {
		argv = append(argv, "--timeout", o.Timeout.String())
	}
	argv = append(argv, c.placeArgs(t)...)
	role := ""
	if c.placing() {
		role = " (" + roleOf(t) + ")"
	}
	c.say("deploying %s to %s %s on %s%s", id, c.App, c.Env, name, role)
	_, err = c.run(ctx, r, argv, nil, true)
	switch {
	case err == nil:
		c.say("%s: %s", name, c.style("ok", "version "+id+" "+appspec.Outcome(b.dir, "")))
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("%w: stopped watching %s; the deploy of %s goes on there.\nFollow it with: %s --follow",
			ErrInterrupted, name, id, c.StatusCmd)
	case errors.Is(err, remote.ErrConnectionLost):
		return fmt.Errorf("%w\nThe deploy of %s may go on on %s: see where it stands with: %s", err, id, name, c.StatusCmd)
	}
	var ae *AgentError
	if errors.As(err, &ae) && !strings.Contains(ae.Msg, id) {
		ae.Msg = fmt.Sprintf("deploy of %s failed: %s", id, ae.Msg)
	}
	return err
}

// has asks the agent whether it has version id, and what it says of
// itself (the delta format it reads, its live version).
func (c *Client) has(ctx context.Context, r remote.Runner, id string) (bool, agentInfo, error) {
	t := &tail{}
	var out bytes.Buffer
	err := r.Run(ctx, []string{"has", c.App, c.Env, id}, nil, &out, t)
	if code, ok := remote.ExitCode(err); ok && code == 3 {
		c.checkProtocol(r.Name(), out.String())
		return false, parseAgentInfo(out.String()), nil
	}
	if err != nil {
		return false, agentInfo{}, explain(r.Name(), []string{"has"}, err, t)
	}
	c.checkProtocol(r.Name(), out.String())
	return true, parseAgentInfo(out.String()), nil
}

// checkProtocol warns when the agent's answer to `has` states another
// protocol version than jepush's (or none: an agent older than protocol 1).
func (c *Client) checkProtocol(server, out string) {
	if w := version.Mismatch(server, version.ParseProtocol(out)); w != "" {
		c.say("warning: %s", w)
	}
}

// upload sends the bundle to the agent, which stores it under a temporary
// name, checks its hash against id and renames it into place.
func (c *Client) upload(ctx context.Context, r remote.Runner, f *os.File, size int64, id string) error {
	return c.send(ctx, r, f, size, "uploading to "+r.Name(), []string{"receive", c.App, c.Env, id}, "")
}

// send streams size bytes of f to the agent command argv on r, with a
// progress bar labelled label; done is the bar's last words.
func (c *Client) send(ctx context.Context, r remote.Runner, f *os.File, size int64, label string, argv []string, done string) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	bar := progress.Start(c.Stderr, c.Interactive, label, size)
	t := &tail{}
	err := r.Run(ctx, argv, bar.Reader(io.LimitReader(f, size)), io.Discard, t)
	if err != nil {
		bar.Fail()
		if ctx.Err() != nil {
			return fmt.Errorf("%w while uploading to %s: nothing was deployed there", ErrInterrupted, r.Name())
		}
		return explain(r.Name(), argv[:1], err, t)
	}
	bar.Done(done)
	return nil
}

// withBy adds --by (who pushes, for `releases`) to an agent command when
// the client knows who pushes and the agent takes the flag: an agent
// older than this jepush would refuse the command, so its help is asked
// first (one more command on the same connection).
func (c *Client) withBy(ctx context.Context, r remote.Runner, argv []string) []string {
	if c.By == "" {
		return argv
	}
	var help bytes.Buffer
	if err := r.Run(ctx, []string{argv[0], "--help"}, nil, &help, io.Discard); err != nil || !strings.Contains(help.String(), "--by ") {
		c.say("%s: its jeagent is older than this jepush: it does not record who deploys (upgrade it)", r.Name())
		return argv
	}
	return append(argv, "--by", c.By)
}
