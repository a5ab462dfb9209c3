package rollforward

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/hook"
	"github.com/jecloud/jecloud/internal/state"
)

// TestHangingHookTimesOut: a user hook that never returns is killed at its
// timeout; the deployment fails with "timed out" and the live version stays;
// the next deployment converges.
func TestHangingHookTimesOut(t *testing.T) {
	phases, converged := []string{hook.Install, hook.Prepare, hook.Deployed}, 0
	defer func() {
		t.Logf("summary: hooks hanging in %d phases, killed at a 300ms timeout: the deployment failed naming the timeout and the live version stayed; after the fix %d converged", len(phases), converged)
	}()
	for _, phase := range phases {
		t.Run(phase, func(t *testing.T) {
			lb := newLab(t)
			dir := filepath.Join(lb.l.Root, "sys", "hooks.d")
			os.MkdirAll(dir, 0o755)
			fixed := filepath.Join(lb.l.Root, "fixed")
			script := fmt.Sprintf("#!/bin/sh\n[ \"$1\" = %s ] && [ \"$JECLOUD_VERSION\" = \"$HANG\" ] && [ ! -e %s ] && { sleep 60 & wait; }\nexit 0\n", phase, fixed)
			if err := os.WriteFile(filepath.Join(dir, "10-hang"), []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			lb.e.Hooks = func() ([]hook.Hook, error) { return hook.Dir(dir, 300*time.Millisecond) }
			v1 := lb.push(web, map[string]string{"x": "1"})
			v2 := lb.push(web, map[string]string{"x": "2"})
			lb.request(web, v1)
			lb.run()
			t.Setenv("HANG", v2)
			lb.request(web, v2)
			start := time.Now()
			lb.run()
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the run took %v with a 300ms hook timeout", d)
			}
			want := phase + " hook 10-hang failed: timed out after 300ms"
			if phase == hook.Deployed {
				want += "; rolled back to " + v1
			}
			a := lb.app(web)
			if r := lb.lastFailure(web); r != want || a.CurrentVersion != v1 || lb.live(web) != v1 || a.Deployment != nil {
				t.Fatalf("failure %q (want %q), current %s live %s deployment %+v\n%s", r, want, a.CurrentVersion, lb.live(web), a.Deployment, lb.log)
			}
			// The hook is fixed: the same version deploys.
			os.WriteFile(fixed, nil, 0o644)
			lb.request(web, v2)
			lb.run()
			if a := lb.app(web); a.CurrentVersion != v2 || lb.live(web) != v2 || a.Deployment != nil {
				t.Fatalf("after the fix: current %s live %s %+v\n%s", a.CurrentVersion, lb.live(web), a.Deployment, lb.log)
			}
			converged++
		})
	}
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory, as root only,
// and unmounts it when the test ends.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a small file system for the disk-full case needs root (mount -t tmpfs); run as root to include it")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "jecloud-test", dir).CombinedOutput(); err != nil {
		t.Skipf("mount -t tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		for i := 0; ; i++ {
			out, err := exec.Command("umount", dir).CombinedOutput()
			if err == nil {
				return
			}
			if i == 50 {
				t.Errorf("umount %s: %v: %s", dir, err, out)
				exec.Command("umount", "-l", dir).Run()
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return dir
}

// fill writes a file at path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
	if f == nil {
		return
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// TestDiskFullMidExtraction fills the disk while a release is being
// unpacked (after the free-space check passed): the deployment fails with
// "out of disk space", the half-written release is removed, the live
// version stays, and once space is freed the same version deploys.
func TestDiskFullMidExtraction(t *testing.T) {
	root := mountTmpfs(t, "8m")
	lb := newLab(t)
	lb.l = state.Layout{Root: root}
	lb.e.Layout = lb.l
	filler := filepath.Join(root, "filler")
	v1 := lb.push(web, map[string]string{"x": "1"})
	lb.request(web, v1)
	lb.run()
	files := map[string]string{"x": "2"}
	for i := 0; i < 40; i++ {
		b := make([]byte, 32<<10)
		rand.Read(b)
		files[fmt.Sprintf("lib/f%02d.bin", i)] = hex.EncodeToString(b) // 64 KiB, compresses to about half
	}
	v2 := lb.push(web, files)
	lb.e.Fault = func(point string) {
		if point == "extract:mid" {
			fill(t, filler)
		}
	}
	lb.request(web, v2)
	lb.run()
	a := lb.app(web)
	if r := lb.lastFailure(web); !strings.HasPrefix(r, "out of disk space while unpacking "+v2) || a.CurrentVersion != v1 || lb.live(web) != v1 {
		t.Fatalf("failure %q, current %s live %s\n%s", r, a.CurrentVersion, lb.live(web), lb.log)
	}
	entries, _ := os.ReadDir(lb.l.Versions(web))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{v1, v1 + ".tar.zst", v2 + ".tar.zst", "current"}
	sort.Strings(want)
	if !slices.Equal(names, want) {
		t.Errorf("versions/ holds %v, want %v (no partial release, no temp)", names, want)
	}
	if got, _ := os.ReadFile(filepath.Join(lb.l.Current(web), "x")); string(got) != "1" {
		t.Errorf("live release content %q", got)
	}
	// Space freed: the same version deploys.
	os.Remove(filler)
	lb.e.Fault = nil
	lb.request(web, v2)
	lb.run()
	if a := lb.app(web); a.CurrentVersion != v2 || lb.live(web) != v2 {
		t.Fatalf("after freeing space: current %s live %s\n%s", a.CurrentVersion, lb.live(web), lb.log)
	}
	t.Logf("summary: disk filled mid-extraction (8 MiB tmpfs): failed with %q, no partial release, v1 live; deployed once space was freed", "out of disk space while unpacking")
}
