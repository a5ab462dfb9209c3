//go:build linux

package lab

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A record describes one server on the host, in runDir()/NAME.json, next to
// NAME.lock, which the process that booted it holds (flock) while it runs:
// a record whose lock is free belongs to a run that is gone.
type record struct {
	Name        string   `json:"name"`
	Net         int      `json:"net"`   // index of its /30 in Subnet
	Image       string   `json:"image"` // the image directory (ephemeral copies go there)
	Cgroups     []string `json:"cgroups,omitempty"`
	NspawnPID   int      `json:"nspawn_pid,omitempty"`
	NspawnStart uint64   `json:"nspawn_start,omitempty"` // start time, against pid reuse
	InitPID     int      `json:"init_pid,omitempty"`
	InitStart   uint64   `json:"init_start,omitempty"`

	lockFD int
}

func (r *record) path() string { return filepath.Join(runDir(), r.Name+".json") }

func lockPath(name string) string { return filepath.Join(runDir(), name+".lock") }

// addrs returns the host's and the server's addresses: .1 and .2 of its /30.
func (r *record) addrs() (host, server netip.Addr) {
	a := Subnet.Addr().As4()
	a[3] += byte(4 * r.Net)
	base := netip.AddrFrom4(a)
	return base.Next(), base.Next().Next()
}

func (r *record) save() error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := r.path() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, r.path())
}

// release removes the record and drops its lock.
func (r *record) release() {
	os.Remove(r.path())
	os.Remove(lockPath(r.Name))
	if r.lockFD > 0 {
		unix.Close(r.lockFD)
		r.lockFD = 0
	}
}

// withLock runs f holding runDir()/lock: allocation and sweeping do not overlap.
func withLock(f func() error) error {
	if err := os.MkdirAll(runDir(), 0o755); err != nil {
		return err
	}
	fd, err := unix.Open(filepath.Join(runDir(), "lock"), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		return err
	}
	return f()
}

// tryLock takes an exclusive flock on path without waiting; it returns the
// fd holding it, or ok false when another process holds it.
func tryLock(path string) (fd int, ok bool, err error) {
	fd, err = unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return -1, false, err
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return -1, false, nil
		}
		return -1, false, err
	}
	return fd, true, nil
}

// allocate picks a free name and /30 and writes the record, holding its lock.
func allocate(image string) (*record, error) {
	var r *record
	err := withLock(func() error {
		recs, err := readRecords()
		if err != nil {
			return err
		}
		used := map[int]bool{}
		for _, o := range recs {
			used[o.Net] = true
		}
		hostAddrs := hostAddrs()
		for i := 0; i < 1<<(32-Subnet.Bits())/4; i++ {
			cand := &record{Net: i}
			h, s := cand.addrs()
			if used[i] || hostAddrs[h] || hostAddrs[s] {
				continue
			}
			var b [3]byte
			rand.Read(b[:])
			cand.Name = Prefix + hex.EncodeToString(b[:])
			cand.Image = image
			fd, ok, err := tryLock(lockPath(cand.Name))
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			cand.lockFD = fd
			if err := cand.save(); err != nil {
				cand.release()
				return err
			}
			r = cand
			return nil
		}
		return fmt.Errorf("no free /30 left in %s: %d servers run (see docs/lab.md to clean up)", Subnet, len(recs))
	})
	return r, err
}

func readRecords() ([]*record, error) {
	paths, err := filepath.Glob(filepath.Join(runDir(), Prefix+"*.json"))
	if err != nil {
		return nil, err
	}
	var recs []*record
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil || r.Name != strings.TrimSuffix(filepath.Base(p), ".json") {
			// A half-written record: keep its name so that Sweep can clean up.
			r = record{Name: strings.TrimSuffix(filepath.Base(p), ".json"), Net: -1}
		}
		recs = append(recs, &r)
	}
	return recs, nil
}

// hostAddrs lists the host's addresses, so the lab never takes one in use.
func hostAddrs() map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			m[p.Addr()] = true
		}
	}
	return m
}

// procStart returns the start time of pid (field 22 of /proc/PID/stat).
func procStart(pid int) (uint64, error) {
	f, err := procStat(pid)
	if err != nil || len(f) < 20 {
		return 0, fmt.Errorf("pid %d: %v", pid, err)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// procStat returns the fields of /proc/PID/stat after the command name
// (so f[0] is field 3, the state), and the name.
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, errors.New("bad stat")
	}
	return strings.Fields(s[i+1:]), nil
}

// alive reports whether pid is the process that started at start (and not
// a zombie).
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	f, err := procStat(pid)
	if err != nil || len(f) < 20 || f[0] == "Z" {
		return false
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	return err == nil && (start == 0 || st == start)
}

// findChild returns the pid of a child of ppid whose command name is comm.
func findChild(ppid int, comm string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		f := strings.Fields(s[close+1:])
		if len(f) > 1 && s[open+1:close] == comm && f[1] == strconv.Itoa(ppid) {
			return pid
		}
	}
	return 0
}
