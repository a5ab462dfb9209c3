package push

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/jecloud/jecloud/internal/bundle"
	"github.com/jecloud/jecloud/internal/bytecount"
	"github.com/jecloud/jecloud/internal/progress"
	"github.com/jecloud/jecloud/internal/remote"
)

// maxManifest caps the manifest a server sends (decompressed).
const maxManifest = 1 << 30

// sendChanges sends version id to r as its changes against the version
// live there (see bundle.WriteDelta), and reports whether it did. When
// there is nothing to compare with, or the changes are most of the tree, or
// the server refuses them, it says why and returns false: the caller sends
// the whole bundle.
func (c *Client) sendChanges(ctx context.Context, r remote.Runner, b *lazyBundle, id string) (bool, error) {
	var wire bytes.Buffer
	t := &tail{}
	err := r.Run(ctx, []string{"manifest", c.App, c.Env}, nil, &wire, t)
	if ctx.Err() != nil {
		return false, fmt.Errorf("%w: nothing was deployed on %s", ErrInterrupted, r.Name())
	}
	if code, ok := remote.ExitCode(err); ok && code == 3 {
		return false, nil // nothing live there yet
	}
	if err != nil {
		c.say("%s: cannot compare with the live version (%s): sending the whole bundle", r.Name(), explain(r.Name(), []string{"manifest"}, err, t))
		return false, nil
	}
	base, err := bundle.DecodeManifest(&wire, maxManifest)
	if err != nil {
		c.say("%s: unreadable manifest (%v): sending the whole bundle", r.Name(), err)
		return false, nil
	}
	tree, err := b.scan(ctx)
	if err != nil {
		return false, err
	}
	_, _, st := bundle.Diff(tree, base)
	var total int64
	for _, e := range tree.Entries {
		total += e.Size
	}
	if st.ContentBytes*2 > total {
		c.say("%s: %s of %s changed since version %s: sending the whole bundle", r.Name(),
			bytecount.Format(st.ContentBytes), bytecount.Format(total), base.Version)
		return false, nil
	}

	f, err := os.CreateTemp("", "jepush-*.delta.zst")
	if err != nil {
		return false, fmt.Errorf("delta: %w", err)
	}
	defer func() { f.Close(); os.Remove(f.Name()) }()
	if _, err := bundle.WriteDelta(b.dir, tree, base, ctxWriter{ctx, f}); err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("%w: nothing was deployed on %s", ErrInterrupted, r.Name())
		}
		return false, fmt.Errorf("%s: %w", b.dir, err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return false, fmt.Errorf("delta: %w", err)
	}
	c.say("%s has version %s: sending the changes (%d new or changed, %d removed, %s of content)",
		r.Name(), base.Version, st.Entries, st.Removed, bytecount.Format(st.ContentBytes))
	err = c.send(ctx, r, f, size, "uploading changes to "+r.Name(),
		[]string{"receive", c.App, c.Env, id, "--delta-from", base.Version},
		fmt.Sprintf("%s sent instead of the whole bundle", bytecount.Format(size)))
	var ae *AgentError
	if errors.As(err, &ae) {
		c.say("%s refused the changes (%s): sending the whole bundle", r.Name(), ae)
		return false, nil
	}
	if err != nil {
		return false, err // interrupted, or the connection
	}
	return true, nil
}

// scan lists the tree with a digest of every file, once for all targets.
func (b *lazyBundle) scan(ctx context.Context) (*bundle.Manifest, error) {
	if b.tree != nil {
		return b.tree, nil
	}
	bar := progress.Start(b.c.Stderr, b.c.Interactive, "comparing "+b.dir, 0)
	m, err := bundle.Scan(b.dir, bundle.WriteOptions{Progress: bar.Set})
	if err == nil && m.Version != b.id {
		err = fmt.Errorf("%s changed while jepush was reading it (version %s, then %s): push again", b.dir, b.id, m.Version)
	}
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("%w while reading %s: nothing was sent", ErrInterrupted, b.dir)
	}
	if err != nil {
		bar.Fail()
		return nil, err
	}
	bar.Done("")
	b.tree = m
	return m, nil
}
