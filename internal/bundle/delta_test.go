package bundle

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// applyDelta runs the whole exchange: the server's manifest of base, the
// client's delta for dir, the server's rebuild. It returns the rebuilt
// tar and what the delta held.
func applyDelta(t *testing.T, baseBundle []byte, dir string) ([]byte, DeltaStats, *Manifest) {
	return applyDeltaFormat(t, baseBundle, dir, 1)
}

// applyDeltaFormat is applyDelta in the given format; with format 2 the
// client has the base's content (its copy of what it pushed).
func applyDeltaFormat(t *testing.T, baseBundle []byte, dir string, format int) ([]byte, DeltaStats, *Manifest) {
	t.Helper()
	m, err := ReadManifest(bytes.NewReader(baseBundle), Limits{})
	if err != nil {
		t.Fatalf("ReadManifest: %v", err)
	}
	var wire bytes.Buffer
	if err := WriteManifest(&wire, m); err != nil {
		t.Fatal(err)
	}
	base, err := DecodeManifest(&wire, 1<<30)
	if err != nil {
		t.Fatalf("DecodeManifest: %v", err)
	}
	tree, err := Scan(dir, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o := DeltaOptions{Format: format}
	if format >= 2 {
		old, id, err := ReadFiles(bytes.NewReader(baseBundle), PlanDelta(tree, base).NeededOld(), Limits{})
		if err != nil || id != base.Version {
			t.Fatalf("ReadFiles: %v (ID %s, want %s)", err, id, base.Version)
		}
		o.Old = old
	}
	var delta bytes.Buffer
	st, err := WriteDeltaWith(dir, tree, base, &delta, o)
	if err != nil {
		t.Fatalf("WriteDelta: %v", err)
	}
	var out bytes.Buffer
	b, v, err := ApplyDelta(bytes.NewReader(baseBundle), &delta, &out, Limits{})
	if err != nil {
		t.Fatalf("ApplyDelta: %v", err)
	}
	if b != base.Version || v != tree.Version {
		t.Fatalf("ApplyDelta says %s -> %s, want %s -> %s", b, v, base.Version, tree.Version)
	}
	return out.Bytes(), st, tree
}

func TestDelta(t *testing.T) {
	base := []string{"a/", "a/x=1", "a/y*=2", "a.txt=3", "b/c/d=4", "l->a/x", "z=" + strings.Repeat("z", 5000)}
	for _, tc := range []struct {
		name    string
		change  func(t *testing.T, dir string)
		entries int // entries sent
		removed int
	}{
		{"unchanged", func(*testing.T, string) {}, 0, 0},
		{"one file changed", func(t *testing.T, d string) { mkTree(t, d, "a/x=one") }, 1, 0},
		{"file added", func(t *testing.T, d string) { mkTree(t, d, "a/new=n", "a/w/=") }, 2, 0},
		{"file removed", func(t *testing.T, d string) { rm(t, d, "a.txt") }, 0, 1},
		{"directory removed", func(t *testing.T, d string) { rm(t, d, "b") }, 0, 3},
		{"file becomes a directory", func(t *testing.T, d string) { rm(t, d, "a.txt"); mkTree(t, d, "a.txt/in=i") }, 2, 1},
		{"executable bit", func(t *testing.T, d string) { chmod(t, filepath.Join(d, "a/x"), 0o755) }, 1, 0},
		{"symlink retargeted", func(t *testing.T, d string) { rm(t, d, "l"); mkTree(t, d, "l->a/y") }, 1, 0},
		{"rename", func(t *testing.T, d string) { mv(t, d, "z", "zz") }, 1, 1},
		{"before and after everything", func(t *testing.T, d string) { mkTree(t, d, "0=first", "~=last") }, 2, 0},
		{"directory renamed", func(t *testing.T, d string) { mv(t, d, "b", "bb") }, 3, 3},
		{"copied", func(t *testing.T, d string) { mkTree(t, d, "a/z2="+strings.Repeat("z", 5000)) }, 1, 0},
		{"one line of a large file", func(t *testing.T, d string) { mkTree(t, d, "big="+largeText(2)) }, 1, 0},
	} {
		for _, format := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/format %d", tc.name, format), func(t *testing.T) {
				dir := t.TempDir()
				mkTree(t, dir, append(base, "big="+largeText(1))...)
				_, old := writeBundle(t, dir)
				tc.change(t, dir)
				wantID, want := writeBundle(t, dir)
				got, st, tree := applyDeltaFormat(t, old, dir, format)
				if tree.Version != wantID {
					t.Fatalf("Scan gives %s, Write %s", tree.Version, wantID)
				}
				if !bytes.Equal(got, decompress(t, want)) {
					t.Fatalf("the rebuilt tar differs from Write's")
				}
				info, err := InspectTar(bytes.NewReader(got), Limits{})
				if err != nil || info.ID != wantID {
					t.Fatalf("rebuilt bundle: %v, ID %s, want %s", err, info.ID, wantID)
				}
				if st.Entries != tc.entries || st.Removed != tc.removed {
					t.Errorf("delta sent %d entries and removed %d, want %d and %d", st.Entries, st.Removed, tc.entries, tc.removed)
				}
				if format < 2 {
					return
				}
				copies := map[string]int{"directory renamed": 1, "copied": 1, "rename": 1, "executable bit": 1}
				switch tc.name {
				case "directory renamed", "copied", "rename", "executable bit":
					if tc.name == "directory renamed" && st.TreeCopies != 1 {
						t.Errorf("a renamed directory: %+v, want one tree copy", st)
					}
					if st.Copies != copies[tc.name] {
						t.Errorf("%d copies, want every file copied: %+v", st.Copies, st)
					}
				case "one line of a large file":
					if st.Patches != 1 || st.PatchBytes > 200 {
						t.Errorf("a one-line change of a %d-byte file: %+v, want one patch of under 200 bytes", len(largeText(1)), st)
					}
				}
			})
		}
	}
}

// largeText is 100 kB of varied lines, the 500th of which says v.
func largeText(v int) string {
	var b strings.Builder
	r := rand.New(rand.NewPCG(7, 7))
	for i := range 2000 {
		if i == 500 {
			fmt.Fprintf(&b, "// version %d\n", v)
			continue
		}
		fmt.Fprintf(&b, "func f%d(x int) int { return x*%d + %d }\n", i, r.IntN(1000), r.IntN(1000))
	}
	return b.String()
}

// TestDeltaRandom changes random trees at random and checks the rebuild
// is byte for byte what Write gives.
func TestDeltaRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "b", "a.b", "a-b", "a_b", "B", "0", "ü"}
	randPath := func() string {
		var p []string
		for range 1 + r.IntN(3) {
			p = append(p, names[r.IntN(len(names))])
		}
		return strings.Join(p, "/")
	}
	for i := range 40 {
		dir := t.TempDir()
		for range 20 {
			mkTreeQuiet(dir, randPath(), fmt.Sprint(r.IntN(5)), r.IntN(4) == 0)
		}
		_, old := writeBundle(t, dir)
		for range 1 + r.IntN(6) {
			p := randPath()
			switch r.IntN(3) {
			case 0:
				os.RemoveAll(filepath.Join(dir, p))
			default:
				mkTreeQuiet(dir, p, fmt.Sprint(r.IntN(5)), r.IntN(4) == 0)
			}
		}
		wantID, want := writeBundle(t, dir)
		for _, format := range []int{1, 2} {
			got, _, _ := applyDeltaFormat(t, old, dir, format)
			if !bytes.Equal(got, decompress(t, want)) {
				t.Fatalf("round %d, format %d: the rebuilt tar differs from Write's (%s)", i, format, wantID)
			}
		}
	}
}

// mkTreeQuiet writes a file at p unless something in the way is a file.
func mkTreeQuiet(root, p, content string, exec bool) {
	full := filepath.Join(root, p)
	if os.MkdirAll(filepath.Dir(full), 0o755) != nil {
		return
	}
	if st, err := os.Stat(full); err == nil && st.IsDir() {
		return
	}
	mode := os.FileMode(0o644)
	if exec {
		mode = 0o755
	}
	os.WriteFile(full, []byte(content), mode)
	os.Chmod(full, mode)
}

func TestDeltaRefused(t *testing.T) {
	dir := t.TempDir()
	mkTree(t, dir, "a=1", "b=2")
	_, v1 := writeBundle(t, dir)
	mkTree(t, dir, "a=changed")
	_, v2 := writeBundle(t, dir)
	mkTree(t, dir, "b=changed too")
	m2, err := ReadManifest(bytes.NewReader(v2), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := Scan(dir, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var delta bytes.Buffer
	if _, err := WriteDelta(dir, tree, m2, &delta); err != nil {
		t.Fatal(err)
	}
	// Applied to another base than the one it was made against.
	_, _, err = ApplyDelta(bytes.NewReader(v1), bytes.NewReader(delta.Bytes()), &bytes.Buffer{}, Limits{})
	if err == nil || !strings.Contains(err.Error(), "but the base bundle is") {
		t.Fatalf("delta on the wrong base: %v", err)
	}
	// A file that changes between Scan and WriteDelta.
	mkTree(t, dir, "b=changed again")
	if _, err := WriteDelta(dir, tree, m2, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "changed while jepush was reading it") {
		t.Fatalf("file changed after Scan: %v", err)
	}
	// Not a delta at all.
	if _, _, err := ApplyDelta(bytes.NewReader(v2), bytes.NewReader(v1), &bytes.Buffer{}, Limits{}); err == nil {
		t.Fatal("a bundle was taken for a delta")
	}
}

func rm(t testing.TB, dir, p string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
		t.Fatal(err)
	}
}

func mv(t *testing.T, dir, from, to string) {
	t.Helper()
	if err := os.Rename(filepath.Join(dir, from), filepath.Join(dir, to)); err != nil {
		t.Fatal(err)
	}
}

// TestTreeCopyRefused: a tree copy from a directory the delta does not list,
// or that the base does not have, or in a format-1 delta, is refused.
func TestTreeCopyRefused(t *testing.T) {
	dir := t.TempDir()
	mkTree(t, dir, "a/", "a/x=1")
	baseID, base := writeBundle(t, dir)
	craft := func(format int, treeSources []string, name, from string) []byte {
		var raw bytes.Buffer
		line, _ := json.Marshal(deltaHeader{Base: baseID, Version: "000000000000", Format: format, TreeSources: treeSources})
		raw.Write(append(line, '\n'))
		tw := tar.NewWriter(&raw)
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: typeTreeCopy, Linkname: from, Mode: 0o755, Format: tar.FormatPAX})
		tw.Close()
		return compress(raw.Bytes())
	}
	for _, tc := range []struct {
		name  string
		delta []byte
		want  string
	}{
		{"not listed", craft(2, nil, "b/", "a/"), "not a directory of the base bundle listed"},
		{"not in the base", craft(2, []string{"c/"}, "b/", "c/"), "not a directory of the base bundle listed"},
		{"not a directory", craft(2, []string{"a/x"}, "b", "a/x"), "both must be directories"},
		{"format 1", craft(0, nil, "b/", "a/"), "cannot be in a bundle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ApplyDelta(bytes.NewReader(base), bytes.NewReader(tc.delta), &bytes.Buffer{}, Limits{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ApplyDelta: %v, want an error with %q", err, tc.want)
			}
		})
	}
}
