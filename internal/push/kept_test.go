package push

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/bundle"
)

func TestParseAgentInfo(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want agentInfo
	}{
		{"", agentInfo{delta: 1}},
		{"jeagent-protocol: 1\nweb prod: version 0123456789ab is not here\n", agentInfo{delta: 1}},
		{"jeagent-protocol: 1\njeagent-delta: 2\njeagent-live: 0123456789ab\n", agentInfo{delta: 2, live: "0123456789ab"}},
		{"jeagent-delta: x\njeagent-live: ../../etc\n", agentInfo{delta: 1}},
		{"jeagent-delta: 3\njeagent-live: 0123456789AB\n", agentInfo{delta: 3}},
	} {
		if got := parseAgentInfo(tc.out); got != tc.want {
			t.Errorf("parseAgentInfo(%q) = %+v, want %+v", tc.out, got, tc.want)
		}
	}
}

// TestKept: a manifest kept is found by its ID, a damaged one is not
// used, and the directory keeps the newest files only.
func TestKept(t *testing.T) {
	home := t.TempDir()
	c := &Client{TreeCache: filepath.Join(home, "trees")}
	m := &bundle.Manifest{Version: "0123456789ab", Entries: []bundle.ManifestEntry{{Name: "a", Type: "f", Size: 1, Digest: "00"}}}
	c.keepManifest(m)
	if got := c.keptManifest("0123456789ab"); got == nil || got.Entries[0].Name != "a" {
		t.Fatalf("kept manifest: %+v", got)
	}
	p := filepath.Join(c.keptDir(), "0123456789ab.manifest.zst")
	if err := os.WriteFile(p, []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := c.keptManifest("0123456789ab"); got != nil {
		t.Fatalf("a damaged manifest was used: %+v", got)
	}
	// Under another ID than its own: not used either.
	c.keepManifest(&bundle.Manifest{Version: "aaaaaaaaaaaa"})
	os.Rename(filepath.Join(c.keptDir(), "aaaaaaaaaaaa.manifest.zst"), filepath.Join(c.keptDir(), "bbbbbbbbbbbb.manifest.zst"))
	if got := c.keptManifest("bbbbbbbbbbbb"); got != nil {
		t.Fatal("a manifest kept under another ID was used")
	}
	for i := range keepBundles + 2 {
		p := filepath.Join(c.keptDir(), string(rune('a'+i))+".tar.zst")
		os.WriteFile(p, nil, 0o600)
		old := time.Now().Add(time.Duration(i-10) * time.Hour)
		os.Chtimes(p, old, old)
	}
	trimKept(c.keptDir())
	ents, _ := filepath.Glob(filepath.Join(c.keptDir(), "*.tar.zst"))
	if len(ents) != keepBundles {
		t.Fatalf("%d bundles kept, want %d: %v", len(ents), keepBundles, ents)
	}
	if _, err := os.Stat(filepath.Join(c.keptDir(), "a.tar.zst")); err == nil {
		t.Fatal("the oldest bundle was kept")
	}
	if (&Client{}).keptDir() != "" {
		t.Fatal("no tree cache, yet a kept directory")
	}
}
