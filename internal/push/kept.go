package push

// What jepush keeps of the versions it pushed, to send the next push as a
// small delta without asking the server for its manifest: in the
// directory beside the tree cache (~/.cache/jecloud/pushed), ID.manifest.zst
// (bundle.WriteManifest) and ID.tar.zst (the bundle, whose files are the
// dictionaries of the next push's patches). Both are named by the version
// ID, the SHA-256 of the content: a kept file is right or unreadable, and a
// damaged one can only make the server refuse the delta (then the whole
// bundle goes). The server stays the source of truth: jepush uses what it
// kept only for the version the agent says is live (`jeagent has`).

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/bundle"
)

// Kept bundles and manifests beyond these counts are removed, oldest
// first.
const (
	keepBundles   = 3
	keepManifests = 16
)

// keptDir is where versions are kept, or "" (TreeCache is off).
func (c *Client) keptDir() string {
	if c.TreeCache == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(c.TreeCache), "pushed")
}

// keptManifest returns the kept manifest of version id, or nil.
func (c *Client) keptManifest(id string) *bundle.Manifest {
	d := c.keptDir()
	if d == "" {
		return nil
	}
	f, err := os.Open(filepath.Join(d, id+".manifest.zst"))
	if err != nil {
		return nil
	}
	defer f.Close()
	m, err := bundle.DecodeManifest(f, maxManifest)
	if err != nil || m.Version != id {
		return nil
	}
	return m
}

// keptBundle opens the kept bundle of version id, or returns nil.
func (c *Client) keptBundle(id string) *os.File {
	d := c.keptDir()
	if d == "" {
		return nil
	}
	f, err := os.Open(filepath.Join(d, id+".tar.zst"))
	if err != nil {
		return nil
	}
	return f
}

// isKept reports whether name is in the kept directory.
func (c *Client) isKept(name string) bool {
	d := c.keptDir()
	if d == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(d, name))
	return err == nil
}

// keepManifest keeps m (best effort: a cache).
func (c *Client) keepManifest(m *bundle.Manifest) {
	c.keep(m.Version+".manifest.zst", func(w io.Writer) error { return bundle.WriteManifest(w, m) })
}

// keep writes name in the kept directory through fill, atomically, then
// trims the directory. Errors are ignored: it is a cache.
func (c *Client) keep(name string, fill func(io.Writer) error) {
	d := c.keptDir()
	if d == "" || os.MkdirAll(d, 0o700) != nil {
		return
	}
	f, err := atomicfile.Create(filepath.Join(d, name), 0o600)
	if err != nil {
		return
	}
	defer f.Abort()
	if fill(f) != nil || f.Sync() != nil || f.CommitAs(filepath.Join(d, name)) != nil {
		return
	}
	trimKept(d)
}

// trimKept removes the oldest kept files beyond the counts.
func trimKept(d string) {
	ents, err := os.ReadDir(d)
	if err != nil {
		return
	}
	type kept struct {
		name string
		mod  int64
	}
	var bundles, manifests []kept
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			continue
		}
		k := kept{e.Name(), info.ModTime().UnixNano()}
		switch {
		case strings.HasSuffix(k.name, ".tar.zst"):
			bundles = append(bundles, k)
		case strings.HasSuffix(k.name, ".manifest.zst"):
			manifests = append(manifests, k)
		}
	}
	for _, l := range []struct {
		ks  []kept
		max int
	}{{bundles, keepBundles}, {manifests, keepManifests}} {
		slices.SortStableFunc(l.ks, func(a, b kept) int {
			switch {
			case a.mod > b.mod:
				return -1
			case a.mod < b.mod:
				return 1
			}
			return 0
		})
		for i := l.max; i < len(l.ks); i++ {
			os.Remove(filepath.Join(d, l.ks[i].name))
		}
	}
}
