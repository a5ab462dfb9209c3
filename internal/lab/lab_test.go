//go:build linux

package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// These tests need no container; the lab itself is tested by
// e2e/lab_test.go (make e2e).

func TestAddrs(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 64; i++ {
		h, s := (&record{Net: i}).addrs()
		if !Subnet.Contains(h) || !Subnet.Contains(s) || s != h.Next() {
			t.Fatalf("net %d: %s %s", i, h, s)
		}
		if h.As4()[3]%4 != 1 {
			t.Fatalf("net %d: host %s is not .1 of a /30", i, h)
		}
		if seen[h.String()] || seen[s.String()] {
			t.Fatalf("net %d reuses %s or %s", i, h, s)
		}
		seen[h.String()], seen[s.String()] = true, true
	}
	if h, s := (&record{Net: 0}).addrs(); h.String() != "192.168.213.1" || s.String() != "192.168.213.2" {
		t.Errorf("net 0: %s %s", h, s)
	}
}

func TestNamesFitInterfaceNames(t *testing.T) {
	t.Setenv("JECLOUD_LAB_RUN", t.TempDir())
	r, err := allocate("/nowhere")
	if err != nil {
		t.Fatal(err)
	}
	defer r.release()
	// "ve-" + name must fit in IFNAMSIZ-1 (15), or nspawn shortens it.
	if !strings.HasPrefix(r.Name, Prefix) || len("ve-"+r.Name) > 15 {
		t.Errorf("name %q", r.Name)
	}
	// A second allocation gets another /30 while the first is held.
	r2, err := allocate("/nowhere")
	if err != nil {
		t.Fatal(err)
	}
	defer r2.release()
	if r2.Net == r.Net || r2.Name == r.Name {
		t.Errorf("two servers share net %d / name %s", r.Net, r.Name)
	}
	// Records are found; their locks are held.
	recs, err := readRecords()
	if err != nil || len(recs) != 2 {
		t.Fatalf("records: %v %v", recs, err)
	}
	if _, ok, _ := tryLock(lockPath(r.Name)); ok {
		t.Error("a running server's lock could be taken")
	}
	r2.release()
	if _, err := os.Stat(filepath.Join(runDir(), r2.Name+".json")); err == nil {
		t.Error("release left the record")
	}
}

func TestImageKey(t *testing.T) {
	k := ImageKey()
	if len(k) != 16 || ImageKey() != k {
		t.Fatalf("key %q", k)
	}
	old := Packages
	defer func() { Packages = old }()
	Packages = append(append([]string{}, old...), "cloud-init")
	if ImageKey() == k {
		t.Error("the package list is not part of the key")
	}
}

func TestPaths(t *testing.T) {
	for in, want := range map[string]string{"/etc/hosts": "etc/hosts", "etc/hosts": "etc/hosts",
		"/../../etc/x": "etc/x", "/": "", "/a/./b/../c": "a/c"} {
		if got := relPath(in); got != want {
			t.Errorf("relPath(%q) = %q, want %q", in, got, want)
		}
	}
	if got := unescapeMount(`/var/cache/a\040b`); got != "/var/cache/a b" {
		t.Errorf("unescape: %q", got)
	}
	if err := removeTree("/tmp"); err == nil {
		t.Error("removeTree accepted a path close to /")
	}
	dir := filepath.Join(t.TempDir(), "a", "b")
	os.MkdirAll(filepath.Join(dir, "c"), 0o755)
	if err := removeTree(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("not removed")
	}
}

// TestSweepKeepsBootingCopies: a server's own copy of the image is being
// made (cp) before any process has it as its root; tearing another server
// down at that moment must not remove it. CI once lost a cloud-init boot so.
func TestSweepKeepsBootingCopies(t *testing.T) {
	t.Setenv("JECLOUD_LAB_RUN", t.TempDir())
	images := t.TempDir()
	copyOf := func(name string) string {
		d := filepath.Join(images, persistPrefix+name)
		if err := os.MkdirAll(filepath.Join(d, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	booting, _, err := tryLock(lockPath(Prefix + "booting"))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(booting)
	tornDown, _, err := tryLock(lockPath(Prefix + "torndown"))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(tornDown)
	keep := copyOf(Prefix + "booting")  // another server's, lock held
	mine := copyOf(Prefix + "torndown") // the one torn down
	dead := copyOf(Prefix + "killed")   // a killed run's: no lock held
	if err := sweepCopies(images, Prefix+"torndown"); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{keep: true, mine: false, dead: false} {
		_, err := os.Stat(path)
		if got := err == nil; got != want {
			t.Errorf("%s kept = %v, want %v", filepath.Base(path), got, want)
		}
	}
}
