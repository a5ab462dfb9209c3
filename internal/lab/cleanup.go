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
		errs = append(errs, sweepCopies(r.Image))
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
// (.#machine.rootfsXXXX, left when nspawn was killed) that no nspawn holds:
// nspawn keeps an OFD lock on .#.#machine.rootfsXXXX.lck while it runs.
func sweepCopies(imageDir string) error {
	var errs []error
	copies, _ := filepath.Glob(filepath.Join(imageDir, ".#machine.*"))
	for _, c := range copies {
		if strings.HasSuffix(c, ".lck") {
			continue
		}
		lck := filepath.Join(imageDir, ".#"+filepath.Base(c)+".lck")
		fd, err := unix.Open(lck, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			// No lock file: an orphan, unless nspawn is creating it right now.
			if fi, err := os.Lstat(c); err != nil || time.Since(fi.ModTime()) < time.Minute {
				continue
			}
		} else {
			lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
			err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk)
			if err != nil {
				unix.Close(fd)
				continue // held: a running container
			}
			// Held by us now: remove the copy, then the lock file.
			errs = append(errs, removeTree(c))
			os.Remove(lck)
			unix.Close(fd)
			continue
		}
		errs = append(errs, removeTree(c))
	}
	// Lock files whose copy is gone.
	lcks, _ := filepath.Glob(filepath.Join(imageDir, ".#.#machine.*.lck"))
	for _, l := range lcks {
		c := filepath.Join(imageDir, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(l), ".#"), ".lck"))
		if _, err := os.Lstat(c); errors.Is(err, os.ErrNotExist) {
			if fd, err := unix.Open(l, unix.O_RDWR|unix.O_CLOEXEC, 0); err == nil {
				lk := unix.Flock_t{Type: unix.F_WRLCK}
				if unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk) == nil {
					os.Remove(l)
				}
				unix.Close(fd)
			}
		}
	}
	return errors.Join(errs...)
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
				if name := filepath.Base(d); !live[name] && len(cgroupPids(allDirs(d))) == 0 {
					errs = append(errs, removeCgroups(name))
				}
			}
		}
		ifs, _ := net.Interfaces()
		for _, i := range ifs {
			if name, ok := strings.CutPrefix(i.Name, "ve-"+Prefix); ok && !live[Prefix+name] {
				exec.Command("ip", "link", "del", i.Name).Run()
			}
		}
		subs, _ := filepath.Glob(filepath.Join(nspawnRun, "*", Prefix+"*"))
		for _, s := range subs {
			if !live[filepath.Base(s)] {
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
	errs = append(errs, err, sweepImages())
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
