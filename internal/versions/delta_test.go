package versions

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/bundle"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/klauspost/compress/zstd"
)

// bigSource is 60 kB of Go-like lines; line 300 says v.
func bigSource(v string) string {
	var b strings.Builder
	for i := range 1500 {
		if i == 300 {
			fmt.Fprintf(&b, "// %s\n", v)
			continue
		}
		fmt.Fprintf(&b, "func f%d(x int) int { return x*%d + %d }\n", i, i*7919%1000, i*104729%997)
	}
	return b.String()
}

// formatTwoDelta makes a format-2 delta from the bundle of from to the tree
// to, with the client holding from's content, and checks it has a patch
// and the copies expected. It returns to's ID and the delta.
func formatTwoDelta(t *testing.T, fromData []byte, to string, copies int) (string, []byte) {
	t.Helper()
	base, err := bundle.ReadManifest(bytes.NewReader(fromData), bundle.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := bundle.Scan(to, bundle.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old, _, err := bundle.ReadFiles(bytes.NewReader(fromData), bundle.PlanDelta(m, base).NeededOld(), bundle.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var delta bytes.Buffer
	st, err := bundle.WriteDeltaWith(to, m, base, &delta, bundle.DeltaOptions{Format: 2, Old: old})
	if err != nil {
		t.Fatal(err)
	}
	if st.Patches != 1 || st.Copies != copies {
		t.Fatalf("delta %+v: want a patch and %d copies", st, copies)
	}
	return m.Version, delta.Bytes()
}

// TestReceiveDeltaHostile corrupts, truncates and replays format-2 deltas:
// each is refused with a reason, or (a flipped byte the format ignores)
// rebuilds exactly the announced version; the live version's bundle,
// receipt and link are never touched.
func TestReceiveDeltaHostile(t *testing.T) {
	v1Files := map[string]string{"server.go": bigSource("v1"), "lib/a.go": strings.Repeat("a", 3000), "lib/b.go": strings.Repeat("b", 3000), "README": "r"}
	baseID, baseData := makeBundle(t, v1Files)
	v2Files := map[string]string{"server.go": bigSource("v2"), "pkg/a.go": strings.Repeat("a", 3000), "pkg/b.go": strings.Repeat("b", 3000), "README": "r"}
	nextID, delta := formatTwoDelta(t, baseData, tree(t, v2Files), 2)
	v3Files := map[string]string{"server.go": bigSource("v3"), "pkg/a.go": strings.Repeat("a", 3000), "pkg/c.go": strings.Repeat("b", 3000), "README": "r"}
	_, nextData := makeBundle(t, v2Files)
	thirdID, _ := formatTwoDelta(t, nextData, tree(t, v3Files), 1)

	// newStore holds the base as the live version.
	newStore := func(t *testing.T) Store {
		s := Store{Layout: state.Layout{Root: t.TempDir()}}
		if _, err := s.Receive(web, baseID, bytes.NewReader(baseData)); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(baseID, s.Layout.Current(web)); err != nil {
			t.Fatal(err)
		}
		return s
	}
	// untouched checks that the store holds the base as it was, live, and
	// nothing else (or also version extra).
	untouched := func(t *testing.T, s Store, extra ...string) {
		t.Helper()
		got, err := os.ReadFile(s.Layout.Bundle(web, baseID))
		if err != nil || !bytes.Equal(got, baseData) {
			t.Fatalf("the live version's bundle changed (%v)", err)
		}
		if l, err := os.Readlink(s.Layout.Current(web)); err != nil || l != baseID {
			t.Fatalf("current -> %q (%v), want %s", l, err, baseID)
		}
		want := []string{baseID + ".received.json", baseID + ".tar.zst", "current"}
		for _, id := range extra {
			want = append(want, id+".received.json", id+".tar.zst")
		}
		slices.Sort(want)
		if got := names(t, s); !slices.Equal(got, want) {
			t.Fatalf("versions/ holds %v, want %v", got, want)
		}
	}

	t.Run("good", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.ReceiveDelta(web, baseID, nextID, bytes.NewReader(delta)); err != nil {
			t.Fatal(err)
		}
		untouched(t, s, nextID)
		got, _ := os.ReadFile(s.Layout.Bundle(web, nextID))
		if info, err := bundle.Inspect(bytes.NewReader(got), bundle.DefaultLimits()); err != nil || info.ID != nextID {
			t.Fatalf("rebuilt: %v, %s, want %s", err, info.ID, nextID)
		}
		// Replayed as it was: the version is here.
		_, err := s.ReceiveDelta(web, baseID, nextID, bytes.NewReader(delta))
		if err == nil || !strings.Contains(err.Error(), "already here") {
			t.Fatalf("replayed delta: %v, want it refused as already here", err)
		}
		untouched(t, s, nextID)
	})

	refused := func(t *testing.T, name, base, id string, d []byte, want string) {
		t.Helper()
		s := newStore(t)
		_, err := s.ReceiveDelta(web, base, id, bytes.NewReader(d))
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v, want a reason with %q", name, err, want)
		}
		untouched(t, s)
	}
	t.Run("replayed", func(t *testing.T) {
		// Announced as another version.
		refused(t, "as another version", baseID, thirdID, delta, "not "+thirdID)
		// Against another base than the one it was made for.
		s := newStore(t)
		if _, err := s.Receive(web, nextID, bytes.NewReader(nextData)); err != nil {
			t.Fatal(err)
		}
		_, err := s.ReceiveDelta(web, nextID, thirdID, bytes.NewReader(delta))
		if err == nil || !strings.Contains(err.Error(), "but the base bundle is "+nextID) {
			t.Fatalf("on another base: %v", err)
		}
		untouched(t, s, nextID)
	})

	t.Run("truncated", func(t *testing.T) {
		for _, n := range []int{0, 1, 4, 10, len(delta) / 3, len(delta) / 2, len(delta) - 9, len(delta) - 1} {
			refused(t, fmt.Sprintf("first %d bytes", n), baseID, nextID, delta[:n], "refused")
		}
		// Truncated inside: a valid zstd stream of a cut delta.
		raw := inflate(t, delta)
		// (Not into the last padding and end-of-archive blocks, which the rebuild does not need.)
		for _, n := range []int{len(raw) / 4, len(raw) / 2, len(raw) - 1600} {
			refused(t, fmt.Sprintf("first %d bytes of the delta, compressed again", n), baseID, nextID, deflate(t, raw[:n]), "refused")
		}
	})

	t.Run("corrupted", func(t *testing.T) {
		for i := 0; i < len(delta); i += max(1, len(delta)/23) {
			d := slices.Clone(delta)
			d[i] ^= 0x40
			refused(t, fmt.Sprintf("byte %d of %d flipped", i, len(delta)), baseID, nextID, d, "refused")
		}
		// Flipped inside, compressed again: refused, or the very version
		// announced (a byte the format does not read, such as padding).
		raw := inflate(t, delta)
		accepted, step := 0, max(1, len(raw)/60)
		for i := 0; i < len(raw); i += step {
			d := slices.Clone(raw)
			d[i] ^= 0x01
			s := newStore(t)
			_, err := s.ReceiveDelta(web, baseID, nextID, bytes.NewReader(deflate(t, d)))
			if err == nil {
				accepted++
				untouched(t, s, nextID)
				continue
			}
			if !strings.Contains(err.Error(), "refused") {
				t.Fatalf("byte %d flipped inside: %v, want a reason with %q", i, err, "refused")
			}
			untouched(t, s)
		}
		t.Logf("%d of %d flips inside the delta were refused, %d rebuilt the announced version", (len(raw)+step-1)/step-accepted, (len(raw)+step-1)/step, accepted)
	})
}

func inflate(t *testing.T, b []byte) []byte {
	t.Helper()
	d, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func deflate(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	e, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	e.Write(b)
	e.Close()
	return buf.Bytes()
}
