package push

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/jecloud/jecloud/internal/bundle"
	"github.com/jecloud/jecloud/internal/bytecount"
	namecheck "github.com/jecloud/jecloud/internal/names"
	"github.com/jecloud/jecloud/internal/progress"
	"github.com/jecloud/jecloud/internal/remote"
)

// maxManifest caps the manifest a server sends (decompressed).
const maxManifest = 1 << 30

// agentInfo is what `jeagent has` says besides its answer.
type agentInfo struct {
	delta int    // the newest delta format it reads (jeagent-delta: N), 1 if it says none
	live  string // its live version, if its bundle is there (jeagent-live: ID)
}

// parseAgentInfo reads the lines of `jeagent has`.
func parseAgentInfo(out string) agentInfo {
	ai := agentInfo{delta: 1}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "jeagent-delta: "); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 1 {
				ai.delta = n
			}
		}
		if v, ok := strings.CutPrefix(line, "jeagent-live: "); ok && namecheck.CheckVersion(v) == nil {
			ai.live = v
		}
	}
	return ai
}

// baseManifest returns the manifest of the version live on r: the one
// kept from an earlier push when the agent names its live version and it
// was kept, else the agent's (`jeagent manifest`, kept for next time). nil
// when there is nothing to compare with.
func (c *Client) baseManifest(ctx context.Context, r remote.Runner, ai agentInfo) (*bundle.Manifest, error) {
	if ai.live != "" {
		if m := c.keptManifest(ai.live); m != nil {
			c.say("%s: comparing with version %s as kept from an earlier push (no manifest to fetch)", r.Name(), m.Version)
			return m, nil
		}
	}
	var wire bytes.Buffer
	t := &tail{}
	err := r.Run(ctx, []string{"manifest", c.App, c.Env}, nil, &wire, t)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%w: nothing was deployed on %s", ErrInterrupted, r.Name())
	}
	if code, ok := remote.ExitCode(err); ok && code == 3 {
		return nil, nil // nothing live there yet
	}
	if err != nil {
		c.say("%s: cannot compare with the live version (%s): sending the whole bundle", r.Name(), explain(r.Name(), []string{"manifest"}, err, t))
		return nil, nil
	}
	base, err := bundle.DecodeManifest(&wire, maxManifest)
	if err != nil {
		c.say("%s: unreadable manifest (%v): sending the whole bundle", r.Name(), err)
		return nil, nil
	}
	c.keepManifest(base)
	return base, nil
}

// sendChanges sends version id to r as its changes against the version
// live there (see bundle.WriteDelta), and reports whether it did. When
// there is nothing to compare with, or the changes are most of the tree, or
// the server refuses them, it says why and returns false: the caller sends
// the whole bundle. An agent that reads delta format 2 gets renamed files
// as copies and changed files as patches against their previous version,
// when jepush kept that version's bundle.
func (c *Client) sendChanges(ctx context.Context, r remote.Runner, b *lazyBundle, id string, ai agentInfo) (bool, error) {
	base, err := c.baseManifest(ctx, r, ai)
	if base == nil || err != nil {
		return false, err
	}
	tree, err := b.scan(ctx)
	if err != nil {
		return false, err
	}
	o := bundle.DeltaOptions{Format: min(ai.delta, bundle.DeltaFormat)}
	_, _, st := bundle.Diff(tree, base)
	changed := st.ContentBytes
	var kept *os.File
	if o.Format >= 2 {
		plan := bundle.PlanDelta(tree, base)
		sizes := make(map[string]int64, len(tree.Entries))
		for _, e := range tree.Entries {
			sizes[e.Name] = e.Size
		}
		for name := range plan.Copies {
			changed -= sizes[name]
		}
		if need := plan.NeededOld(); len(need) > 0 {
			if kept = c.keptBundle(base.Version); kept != nil {
				defer kept.Close()
				old, got, err := bundle.ReadFiles(kept, need, bundle.DefaultLimits())
				if err == nil && got == base.Version {
					o.Old = old
				}
			}
		}
	}
	var total int64
	for _, e := range tree.Entries {
		total += e.Size
	}
	if changed*2 > total {
		c.say("%s: %s of %s changed since version %s: sending the whole bundle", r.Name(),
			bytecount.Format(changed), bytecount.Format(total), base.Version)
		return false, nil
	}

	f, err := os.CreateTemp("", "jepush-*.delta.zst")
	if err != nil {
		return false, fmt.Errorf("delta: %w", err)
	}
	owned := false // by the goroutine that keeps the new version
	defer func() {
		if !owned {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if st, err = bundle.WriteDeltaWith(b.dir, tree, base, ctxWriter{ctx, f}, o); err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("%w: nothing was deployed on %s", ErrInterrupted, r.Name())
		}
		return false, fmt.Errorf("%s: %w", b.dir, err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return false, fmt.Errorf("delta: %w", err)
	}
	how := ""
	if st.Copies > 0 || st.Patches > 0 {
		how = fmt.Sprintf(", %d copied, %d patched", st.Copies, st.Patches)
	}
	c.say("%s has version %s: sending the changes (%d new or changed, %d removed%s, %s of content)",
		r.Name(), base.Version, st.Entries, st.Removed, how, bytecount.Format(st.ContentBytes))
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
	c.keepManifest(tree)
	if !c.isKept(id + ".tar.zst") {
		kb := c.keptBundle(base.Version)
		if kb == nil {
			return true, nil
		}
		owned = true
		b.keepAsync(func() { c.keepRebuilt(kb, f, id) })
	}
	return true, nil
}

// keepRebuilt keeps the bundle of version id rebuilt from the kept base
// bundle and the delta that was sent, as the server rebuilt it (closing
// and removing both handles' files as needed).
func (c *Client) keepRebuilt(base, delta *os.File, id string) {
	defer base.Close()
	defer func() { delta.Close(); os.Remove(delta.Name()) }()
	if _, err := delta.Seek(0, io.SeekStart); err != nil {
		return
	}
	c.keep(id+".tar.zst", func(w io.Writer) error {
		enc, err := bundle.NewEncoder(w)
		if err != nil {
			return err
		}
		defer enc.Close()
		sum := sha256.New()
		if _, _, err := bundle.ApplyDelta(base, delta, io.MultiWriter(enc, sum), bundle.DefaultLimits()); err != nil {
			return err
		}
		if got := bundle.ID(sum.Sum(nil)); got != id {
			return fmt.Errorf("rebuilt %s, not %s", got, id)
		}
		return enc.Close()
	})
}

// keepAsync runs fn in the background; Push waits for it before it
// returns (wait).
func (b *lazyBundle) keepAsync(fn func()) {
	b.bg.Add(1)
	go func() {
		defer b.bg.Done()
		fn()
	}()
}

// keepWhole keeps the whole bundle just uploaded as version id, and its
// manifest, in the background.
func (c *Client) keepWhole(b *lazyBundle, id string) {
	if c.keptDir() == "" || c.isKept(id+".tar.zst") {
		return
	}
	f, err := os.Open(b.f.Name())
	if err != nil {
		return
	}
	b.keepAsync(func() {
		defer f.Close()
		var m *bundle.Manifest
		c.keep(id+".tar.zst", func(w io.Writer) error {
			var err error
			m, err = bundle.ReadManifest(io.TeeReader(f, w), bundle.DefaultLimits())
			if err == nil && m.Version != id {
				err = fmt.Errorf("bundle %s, not %s", m.Version, id)
			}
			if err == nil {
				_, err = io.Copy(w, f) // what the decoder did not read
			}
			return err
		})
		if m != nil && m.Version == id {
			c.keepManifest(m)
		}
	})
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
