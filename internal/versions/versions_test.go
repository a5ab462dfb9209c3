package versions

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/bundle"
	"github.com/jecloud/jecloud/internal/state"
)

var web = state.AppEnv{App: "web", Env: "prod"}

// tree writes files (path: content) under a new temp dir and returns it.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// makeBundle returns the bundle of files and its ID.
func makeBundle(t *testing.T, files map[string]string) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	id, err := bundle.Write(tree(t, files), &buf, bundle.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return id, buf.Bytes()
}

// names lists the versions directory of web ("" entries if it is missing).
func names(t *testing.T, s Store) []string {
	t.Helper()
	entries, err := os.ReadDir(s.Layout.Versions(web))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestHas(t *testing.T) {
	const id = "0123456789ab"
	for _, tc := range []struct {
		name  string
		files []string // made under versions/
		want  bool
	}{
		{"nothing", nil, false},
		{"bundle", []string{id + ".tar.zst"}, true},
		{"release", []string{id + "/"}, true},
		{"receipt only", []string{id + ".received.json"}, false},
		{"another version", []string{"ba9876543210.tar.zst", "ba9876543210/"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Store{Layout: state.Layout{Root: t.TempDir()}}
			dir := s.Layout.Versions(web)
			os.MkdirAll(dir, 0o755)
			for _, f := range tc.files {
				var err error
				if name, ok := strings.CutSuffix(f, "/"); ok {
					err = os.Mkdir(filepath.Join(dir, name), 0o755)
				} else {
					err = os.WriteFile(filepath.Join(dir, f), nil, 0o644)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if got := s.Has(web, id); got != tc.want {
				t.Errorf("Has with %v = %v, want %v", tc.files, got, tc.want)
			}
		})
	}
}

func TestLive(t *testing.T) {
	const id, other = "0123456789ab", "ba9876543210"
	for _, tc := range []struct {
		name    string
		app     *state.App // nil: no app.json
		current string     // target of versions/current ("": none)
		want    bool
	}{
		{"live", &state.App{CurrentVersion: id}, id, true},
		{"no app.json", nil, id, false},
		{"no current link", &state.App{CurrentVersion: id}, "", false},
		{"current points elsewhere", &state.App{CurrentVersion: id}, other, false},
		{"app.json says another", &state.App{CurrentVersion: other}, id, false},
		{"a deployment pending", &state.App{CurrentVersion: id, Deployment: &state.Deployment{Version: other}}, id, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Store{Layout: state.Layout{Root: t.TempDir()}}
			os.MkdirAll(s.Layout.Versions(web), 0o755)
			if tc.app != nil {
				if err := state.Write(s.Layout.AppJSON(web), tc.app); err != nil {
					t.Fatal(err)
				}
			}
			if tc.current != "" {
				if err := os.Symlink(tc.current, s.Layout.Current(web)); err != nil {
					t.Fatal(err)
				}
			}
			if got := s.Live(web, id); got != tc.want {
				t.Errorf("Live = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReceive(t *testing.T) {
	id, data := makeBundle(t, map[string]string{"server.js": "listen()", "lib/a.js": "a"})
	other, _ := makeBundle(t, map[string]string{"server.js": "other"})
	for _, tc := range []struct {
		name    string
		id      string
		data    []byte
		wantErr string // "": stored
	}{
		{"good bundle", id, data, ""},
		{"hash does not match the ID", other, data, "hashes to " + id},
		{"not a bundle", id, []byte("not a bundle"), "bundle for " + id + " refused"},
		{"cut short", id, data[:len(data)/2], "bundle for " + id + " refused"},
		{"empty", id, nil, "bundle for " + id + " refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Store{Layout: state.Layout{Root: t.TempDir()}}
			n, err := s.Receive(web, tc.id, bytes.NewReader(tc.data))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Receive: %v, want an error with %q", err, tc.wantErr)
				}
				if got := names(t, s); len(got) != 0 {
					t.Errorf("a refused bundle left %v behind", got)
				}
				if s.Has(web, tc.id) {
					t.Errorf("Has(%s) after a refused bundle", tc.id)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(tc.data)) {
				t.Errorf("Receive read %d bytes, want %d", n, len(tc.data))
			}
			checkStored(t, s, tc.id, tc.data)
		})
	}
}

// checkStored checks that version id is in place (with the bytes data,
// unless nil) with its receipt as Receive writes it, as the only files of
// versions/.
func checkStored(t *testing.T, s Store, id string, data []byte) {
	t.Helper()
	got, err := os.ReadFile(s.Layout.Bundle(web, id))
	if err != nil {
		t.Fatal(err)
	}
	if data != nil && !bytes.Equal(got, data) {
		t.Errorf("the bundle in place differs from the one received")
	}
	info, err := bundle.Inspect(bytes.NewReader(got), bundle.DefaultLimits())
	if err != nil || info.ID != id {
		t.Fatalf("the bundle in place: %v, ID %s; want %s", err, info.ID, id)
	}
	var r state.Receipt
	if err := state.Read(s.Layout.Receipt(web, id), &r); err != nil {
		t.Fatal(err)
	}
	if r.Entries != info.Entries || r.ContentBytes != info.ContentBytes || r.Received.IsZero() {
		t.Errorf("receipt %+v, want %d entries, %d content bytes and a date", r, info.Entries, info.ContentBytes)
	}
	if got, want := names(t, s), []string{id + ".received.json", id + ".tar.zst"}; !slices.Equal(got, want) {
		t.Errorf("versions/ holds %v, want %v", got, want)
	}
}

func TestReceiveDelta(t *testing.T) {
	baseID, baseData := makeBundle(t, map[string]string{"server.js": "v1", "lib/a.js": strings.Repeat("a", 4000)})
	next := tree(t, map[string]string{"server.js": "v2", "lib/a.js": strings.Repeat("a", 4000), "lib/b.js": "b"})
	nextID, err := bundle.Hash(next, bundle.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	otherID, _ := makeBundle(t, map[string]string{"x": "y"})
	baseManifest, err := bundle.ReadManifest(bytes.NewReader(baseData), bundle.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := bundle.Scan(next, bundle.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var delta bytes.Buffer
	if _, err := bundle.WriteDelta(next, m, baseManifest, &delta); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		base    string // "": the base bundle is not here
		id      string
		delta   []byte
		wantErr string
	}{
		{"good delta", baseID, nextID, delta.Bytes(), ""},
		{"delta for another version", baseID, otherID, delta.Bytes(), "not " + otherID},
		{"not a delta", baseID, nextID, []byte("garbage"), "changes against " + baseID + " refused"},
		{"base not here", "", nextID, delta.Bytes(), "changes against " + baseID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Store{Layout: state.Layout{Root: t.TempDir()}}
			if tc.base != "" {
				if _, err := s.Receive(web, tc.base, bytes.NewReader(baseData)); err != nil {
					t.Fatal(err)
				}
			}
			before := names(t, s)
			_, err := s.ReceiveDelta(web, baseID, tc.id, bytes.NewReader(tc.delta))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ReceiveDelta: %v, want an error with %q", err, tc.wantErr)
				}
				if got := names(t, s); !slices.Equal(got, before) {
					t.Errorf("a refused delta left versions/ with %v, want %v", got, before)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(s.Layout.Bundle(web, tc.id))
			info, err := bundle.Inspect(bytes.NewReader(got), bundle.DefaultLimits())
			if err != nil || info.ID != tc.id {
				t.Fatalf("rebuilt bundle: %v, ID %s; want %s", err, info.ID, tc.id)
			}
			var r state.Receipt
			if err := state.Read(s.Layout.Receipt(web, tc.id), &r); err != nil || r.Entries != info.Entries {
				t.Errorf("receipt %+v, %v; want %d entries", r, err, info.Entries)
			}
		})
	}
}

func TestPut(t *testing.T) {
	files := map[string]string{"server.js": "listen()", "lib/a.js": "a", "lib/b.js": "b"}
	for _, tc := range []struct {
		name  string
		times int // Put the same tree this many times
	}{
		{"once", 1},
		{"again: the bundle already here is kept", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Store{Layout: state.Layout{Root: t.TempDir()}}
			dir := tree(t, files)
			want, err := bundle.Hash(dir, bundle.WriteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for range tc.times {
				id, err := s.Put(web, dir)
				if err != nil {
					t.Fatal(err)
				}
				if id != want {
					t.Fatalf("Put returned %s, want %s (bundle.Hash)", id, want)
				}
			}
			checkStored(t, s, want, nil)
			if !s.Has(web, want) {
				t.Errorf("Has(%s) after Put", want)
			}
		})
	}
}

func TestPutMissingDirLeavesNothing(t *testing.T) {
	s := Store{Layout: state.Layout{Root: t.TempDir()}}
	if _, err := s.Put(web, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("Put of a missing directory: no error")
	}
	if got := names(t, s); len(got) != 0 {
		t.Errorf("a failed Put left %v behind", got)
	}
}

// TestReserveKeptFree: a push (or a git build) into a disk that has, or
// would be left with, less free space than the Reserve is refused before a
// byte is written, or stopped as the free space runs out; nothing is left
// behind either way, and the error names the directory and the figures.
func TestReserveKeptFree(t *testing.T) {
	rnd := make([]byte, 12<<20) // incompressible (xorshift): the bundle is over 8 MiB
	for i := 0; i+8 <= len(rnd); i += 8 {
		x := uint64(i) + 0x9e3779b97f4a7c15
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		for j := 0; j < 8; j++ {
			rnd[i+j] = byte(x >> (8 * j))
		}
	}
	bigID, big := makeBundle(t, map[string]string{"blob": string(rnd)})
	smallID, small := makeBundle(t, map[string]string{"server.js": "listen()"})
	const reserve = 64 << 20
	for _, tc := range []struct {
		name    string
		free    []int64 // what Free says at each call (the last repeats)
		id      string
		data    []byte
		wantErr string
	}{
		{"enough room", []int64{1 << 30}, bigID, big, ""},
		{"disk already short", []int64{10 << 20}, smallID, small, "10.0 MiB free, and JeCloud keeps 64.0 MiB free"},
		{"runs short while receiving", []int64{1 << 30, 20 << 20}, bigID, big, "20.0 MiB free"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			s := Store{Layout: state.Layout{Root: t.TempDir()}, Reserve: reserve, Free: func(string) (int64, error) {
				v := tc.free[min(calls, len(tc.free)-1)]
				calls++
				return v, nil
			}}
			_, err := s.Receive(web, tc.id, bytes.NewReader(tc.data))
			if tc.wantErr == "" {
				if err != nil || !s.Has(web, tc.id) {
					t.Fatalf("Receive: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), s.Layout.Versions(web)) {
				t.Fatalf("Receive: %v; want an error naming %s and %q", err, s.Layout.Versions(web), tc.wantErr)
			}
			if got := names(t, s); len(got) != 0 {
				t.Errorf("left behind: %v", got)
			}
		})
	}
	t.Run("git build", func(t *testing.T) {
		s := Store{Layout: state.Layout{Root: t.TempDir()}, Reserve: reserve, Free: func(string) (int64, error) { return 1 << 20, nil }}
		if _, err := s.Put(web, tree(t, map[string]string{"a": "b"})); err == nil || !strings.Contains(err.Error(), "a git build") {
			t.Fatalf("Put: %v", err)
		}
		if got := names(t, s); len(got) != 0 {
			t.Errorf("left behind: %v", got)
		}
	})
}
