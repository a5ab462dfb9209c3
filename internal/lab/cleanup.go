//go:build linux

package lab

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// nspawnRun is where systemd-nspawn keeps per-machine directories on the
// host (propagate/NAME, ...); it does not remove them without a host systemd.
const nspawnRun = "/run/systemd/nspawn"

// cgroupRoots returns the cgroup hierarchies nspawn uses: the unified one
// alone (cgroup v2), or name=systemd and, on a hybrid host, unified.
func cgroupRoots() []string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{"/sys/fs/cgroup"}
	}
	var roots []string
	for _, r := range []string{"/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"} {
		if _, err := os.Stat(filepath.Join(r, "cgroup.procs")); err == nil {
			roots = append(roots, r)
		}
	}
	return roots
}

// makeCgroups makes ROOT/NAME in each hierarchy. systemd-nspawn, started
// inside them with --keep-unit, puts itself in NAME/supervisor and the
// container in NAME/payload.
func makeCgroups(name string) ([]string, error) {
	var made []string
	for _, r := range cgroupRoots() {
		d := filepath.Join(r, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			return made, fmt.Errorf("cgroup: %w", err)
		}
		made = append(made, d)
	}
	return made, nil
}

// teardown stops a server and removes what it left: nspawn (SIGTERM, then
// SIGKILL), the container's PID 1 if nspawn died without taking it along,
// the cgroups, the veth, /run/systemd/nspawn entries and, if nspawn could
// not remove it, the ephemeral copy. done, if not nil, is closed when nspawn
// has exited (it is our child); otherwise /proc is watched.
func teardown(r *record, done <-chan struct{}) error {
	var errs []error
	if r.NspawnPID > 0 {
		exited := func() bool {
			if done != nil {
				select {
				case <-done:
					return true
				default:
					return false
				}
			}
			return !alive(r.NspawnPID, r.NspawnStart)
		}
		if !exited() {
			syscall.Kill(r.NspawnPID, syscall.SIGTERM)
			if !waitFor(20*time.Second, exited) {
				syscall.Kill(r.NspawnPID, syscall.SIGKILL)
				if !waitFor(10*time.Second, exited) {
					errs = append(errs, fmt.Errorf("%s: systemd-nspawn (pid %d) does not exit", r.Name, r.NspawnPID))
				}
			}
		}
	}
	// Killing the container's PID 1 ends every process of its pid namespace.
	if alive(r.InitPID, r.InitStart) {
		syscall.Kill(r.InitPID, syscall.SIGKILL)
		if !waitFor(10*time.Second, func() bool { return !alive(r.InitPID, r.InitStart) }) {
			errs = append(errs, fmt.Errorf("%s: the container's systemd (pid %d) does not exit", r.Name, r.InitPID))
		}
	}
	errs = append(errs, removeCgroups(r.Name))
	if _, err := net.InterfaceByName("ve-" + r.Name); err == nil {
		// Normally gone with the container's network namespace.
		if out, err := exec.Command("ip", "link", "del", "ve-"+r.Name).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip link del ve-%s: %v: %s", r.Name, err, out))
		}
	}
	errs = append(errs, removeNspawnRun(r.Name))
	if r.Image != "" {
		errs = append(errs, sweepCopies(r.Image, r.Name))
	}
	return errors.Join(errs...)
}

func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// removeCgroups removes ROOT/NAME and everything under it in each
// hierarchy, deepest first. Processes still in them are killed first: only
// the container's (the lab made these groups for it).
func removeCgroups(name string) error {
	var errs []error
	for _, r := range cgroupRoots() {
		top := filepath.Join(r, name)
		if _, err := os.Stat(top); err != nil {
			continue
		}
		var dirs []string
		filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for _, pid := range cgroupPids(dirs) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			// A cgroup is busy for a moment after its last process exits.
			var err error
			waitFor(5*time.Second, func() bool {
				err = os.Remove(d)
				return err == nil || errors.Is(err, os.ErrNotExist)
			})
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("cgroup: %w (pids: %v)", err, cgroupPids([]string{d})))
			}
		}
	}
	return errors.Join(errs...)
}

func cgroupPids(dirs []string) []int {
	var pids []int
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// removeNspawnRun removes /run/systemd/nspawn/*/NAME, then the directories
// that are left empty.
func removeNspawnRun(name string) error {
	var errs []error
	subs, _ := filepath.Glob(filepath.Join(nspawnRun, "*"))
	for _, sub := range subs {
		p := filepath.Join(sub, name)
		if _, err := os.Lstat(p); err == nil {
			errs = append(errs, removeTree(p))
		}
		os.Remove(sub) // only if empty
	}
	os.Remove(nspawnRun)
	return errors.Join(errs...)
}

// sweepCopies removes the ephemeral copies in an image directory
// (.#machine.rootfsXXXX, left when nspawn was killed) that no container
// uses: no process has one as its root. While an nspawn of this image has no
// container running (it is copying the image, or removing its copy), the
// directory is left alone for now. A server's own copy
// (.#machine.persist-NAME) is kept while another run holds NAME's record:
// it is being copied, or its container is not started yet. owner names the
// server being torn down, whose copy goes.
func sweepCopies(imageDir, owner string) error {
	copies, _ := filepath.Glob(filepath.Join(imageDir, ".#machine.*"))
	if len(copies) == 0 || nspawnBusy(imageDir) {
		return nil
	}
	roots := processRoots()
	var errs []error
	for _, c := range copies {
		if strings.HasSuffix(c, ".lck") {
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(c, &st); err != nil {
			continue
		}
		if roots[devIno{uint64(st.Dev), st.Ino}] {
			continue // a running container's root
		}
		if name, ok := strings.CutPrefix(filepath.Base(c), persistPrefix); ok && name != owner && held(name) {
			continue // a server booting, in this run or another
		}
		if err := removeTree(c); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		os.Remove(filepath.Join(imageDir, ".#"+filepath.Base(c)+".lck"))
	}
	return errors.Join(errs...)
}

// persistPrefix starts the name of a server's own copy of the image.
const persistPrefix = ".#machine.persist-"

// held reports whether a run holds the lock of the server named name (its
// record is live). An absent lock file is not held.
func held(name string) bool {
	fd, err := unix.Open(lockPath(name), unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	return false // closing fd drops the lock
}

type devIno struct{ dev, ino uint64 }

// processRoots returns the root directories of all processes.
func processRoots() map[devIno]bool {
	m := map[devIno]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name()+"/root/", &st) == nil {
			m[devIno{uint64(st.Dev), st.Ino}] = true
		}
	}
	return m
}

// nspawnBusy reports whether a systemd-nspawn whose -D is in imageDir runs
// without a container (starting, or shutting down).
func nspawnBusy(imageDir string) bool {
	_, busy := nspawnsOf(imageDir)
	return busy
}

// nspawnUses reports whether a systemd-nspawn runs with its -D in imageDir.
func nspawnUses(imageDir string) bool {
	n, _ := nspawnsOf(imageDir)
	return n > 0
}

// nspawnsOf counts the systemd-nspawn processes whose -D is in imageDir,
// and says whether one of them runs without a container (it is starting,
// copying the image, or shutting down, removing its copy).
func nspawnsOf(imageDir string) (n int, busy bool) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if filepath.Base(args[0]) != "systemd-nspawn" {
			continue
		}
		for i, a := range args {
			d := ""
			if a == "-D" || a == "--directory" {
				if i+1 < len(args) {
					d = args[i+1]
				}
			} else if v, ok := strings.CutPrefix(a, "--directory="); ok {
				d = v
			}
			if d != "" && filepath.Dir(filepath.Clean(d)) == filepath.Clean(imageDir) {
				n++
				if findChild(pid, "systemd") == 0 {
					busy = true
				}
			}
		}
	}
	return n, busy
}

// removeTree removes a directory tree that the lab made, after unmounting
// whatever is mounted inside it (an interrupted debootstrap leaves proc and
// sys mounted in its target). It refuses to delete across a mount point.
func removeTree(path string) error {
	path = filepath.Clean(path)
	if !filepath.IsAbs(path) || strings.Count(path, "/") < 3 {
		return fmt.Errorf("remove %s: refusing a path so close to /", path)
	}
	for _, m := range mountsUnder(path) {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("remove %s: unmount %s: %w", path, m, err)
		}
	}
	if m := mountsUnder(path); len(m) > 0 {
		return fmt.Errorf("remove %s: still mounted: %v", path, m)
	}
	return os.RemoveAll(path)
}

// mountsUnder returns the mount points at or below path, deepest first.
func mountsUnder(path string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var ms []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == path || strings.HasPrefix(mp, path+"/") {
			ms = append(ms, mp)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return len(ms[i]) > len(ms[j]) })
	return ms
}

// unescapeMount decodes the \NNN octal escapes of /proc/self/mountinfo.
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

var (
	sweepMu   sync.Mutex
	sweptOnce bool
	sweepErr  error
)

func sweepOnce() error {
	sweepMu.Lock()
	defer sweepMu.Unlock()
	if !sweptOnce {
		sweptOnce = true
		sweepErr = Sweep()
	}
	return sweepErr
}

// Sweep removes what lab runs that are gone (killed, interrupted, crashed)
// left on this machine: their containers (stopped), cgroups, veths,
// /run/systemd/nspawn entries, ephemeral copies of the image and half-built
// images. Servers of runs still going (in this process or another) are left
// alone. Boot calls it once per process.
func Sweep() error {
	if os.Geteuid() != 0 {
		return errors.New("lab: Sweep needs root")
	}
	var errs []error
	err := withLock(func() error {
		recs, err := readRecords()
		if err != nil {
			return err
		}
		live := map[string]bool{}
		for _, r := range recs {
			fd, ok, err := tryLock(lockPath(r.Name))
			if err != nil {
				errs = append(errs, err)
				live[r.Name] = true // unsure: leave it
				continue
			}
			if !ok {
				live[r.Name] = true
				continue
			}
			r.lockFD = fd
			errs = append(errs, teardown(r, nil))
			r.release()
		}
		// Leftovers with no record (a run killed between steps).
		for _, root := range cgroupRoots() {
			dirs, _ := filepath.Glob(filepath.Join(root, Prefix+"*"))
			for _, d := range dirs {
				fi, err := os.Stat(d)
				if err != nil || time.Since(fi.ModTime()) < time.Minute {
					continue // maybe a server being started right now
				}
				if name := filepath.Base(d); !live[name] && len(cgroupPids(allDirs(d))) == 0 {
					errs = append(errs, removeCgroups(name))
				}
			}
		}
		// A container is gone when no record of a live run names it and no
		// process is left in its cgroups.
		gone := func(name string) bool {
			if live[name] {
				return false
			}
			for _, root := range cgroupRoots() {
				if len(cgroupPids(allDirs(filepath.Join(root, name)))) > 0 {
					return false
				}
			}
			return true
		}
		ifs, _ := net.Interfaces()
		for _, i := range ifs {
			if name, ok := strings.CutPrefix(i.Name, "ve-"); ok && strings.HasPrefix(name, Prefix) && gone(name) {
				exec.Command("ip", "link", "del", i.Name).Run()
			}
		}
		subs, _ := filepath.Glob(filepath.Join(nspawnRun, "*", Prefix+"*"))
		for _, s := range subs {
			if gone(filepath.Base(s)) {
				errs = append(errs, removeNspawnRun(filepath.Base(s)))
			}
		}
		locks, _ := filepath.Glob(filepath.Join(runDir(), Prefix+"*.lock"))
		for _, l := range locks {
			name := strings.TrimSuffix(filepath.Base(l), ".lock")
			if _, err := os.Stat(filepath.Join(runDir(), name+".json")); errors.Is(err, os.ErrNotExist) && !live[name] {
				if fd, ok, _ := tryLock(l); ok {
					os.Remove(l)
					unix.Close(fd)
				}
			}
		}
		return nil
	})
	errs = append(errs, err, sweepStages(), sweepImages())
	return errors.Join(errs...)
}

func allDirs(top string) []string {
	var dirs []string
	filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	return dirs
}
