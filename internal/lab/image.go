//go:build linux

package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Suite is the Debian release of the image.
const Suite = "bookworm"

// Packages are installed into the image on top of debootstrap's minbase.
// nodejs, redis-server and postfix (with libsasl2-modules, the SASL
// client mechanisms the mail hook's relay logs in with) are there for the
// hooks' tests; their units are not enabled at boot (the hooks turn on what
// they need).
var Packages = []string{
	"systemd", "systemd-sysv", "dbus", "libpam-systemd", "iproute2", "procps", "curl",
	"ca-certificates", "openssh-server", "sudo", "nodejs", "redis-server",
	"postfix", "libsasl2-modules",
	// git: the servers fetch pushed commits (git push-to-deploy) and one
	// plays the git server in e2e's TestGitWebhook.
	"git",
	// cloud-init runs only in servers booted with Options.CloudInit (no
	// datasource otherwise: it stays off); locales and python3-cffi-backend
	// are what its modules need on minbase.
	"cloud-init", "locales", "python3-cffi-backend",
	// haproxy and caddy: the front door (internal/proxy); the packages'
	// own haproxy.service and caddy.service are enabled, as on a real
	// server, and `jeagent init` turns them off for jecloud-haproxy.service
	// and jecloud-proxy.service.
	"caddy", "haproxy",
}

// imageVersion names the set-up customize does; change it when that
// changes so that cached images are rebuilt.
const imageVersion = "jclab-image-4"

// CacheDir is where images are kept: $JECLOUD_LAB_CACHE, else
// /var/cache/jecloud-lab. Each image is KEY/rootfs, KEY a hash of the
// package list and imageVersion; debs/ keeps downloaded packages.
func CacheDir() string {
	if d := os.Getenv("JECLOUD_LAB_CACHE"); d != "" {
		return d
	}
	return "/var/cache/jecloud-lab"
}

// Mirror is the Debian mirror debootstrap uses: $JECLOUD_LAB_MIRROR, else
// "" for debootstrap's own default.
func Mirror() string { return os.Getenv("JECLOUD_LAB_MIRROR") }

// ImageKey identifies the image: what goes into it, not where it comes from.
func ImageKey() string {
	h := sha256.Sum256([]byte(imageVersion + "\n" + Suite + "\n" + strings.Join(Packages, ",") + "\n" + customizeSpec))
	return hex.EncodeToString(h[:8])
}

func imageDir() string { return filepath.Join(CacheDir(), ImageKey()) }

func imageReady() bool {
	_, err := os.Stat(filepath.Join(imageDir(), "ready"))
	return err == nil
}

var imageMu sync.Mutex

// Image returns the root file system of the lab image, building it the
// first time (debootstrap, about a minute or two) under a lock so that
// concurrent test processes build it once.
func Image(t testing.TB) string {
	t.Helper()
	imageMu.Lock()
	defer imageMu.Unlock()
	dir := imageDir()
	rootfs := filepath.Join(dir, "rootfs")
	if imageReady() {
		markUsed(dir)
		return rootfs
	}
	if err := os.MkdirAll(CacheDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(filepath.Join(CacheDir(), "lock"), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Logf("lab: waiting for another process that builds the image in %s", CacheDir())
		if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
			t.Fatal(err)
		}
	}
	if imageReady() {
		return rootfs
	}
	start := time.Now()
	t.Logf("lab: building the %s image %s (debootstrap from %q, empty for its default mirror; about 2 minutes, once)", Suite, dir, Mirror())
	if err := buildImage(dir); err != nil {
		t.Fatalf("lab: build image: %v", err)
	}
	t.Logf("lab: image built in %.0fs", time.Since(start).Seconds())
	return rootfs
}

func buildImage(dir string) error {
	var b [4]byte
	rand.Read(b[:])
	build := filepath.Join(CacheDir(), ".build-"+filepath.Base(dir)+"-"+hex.EncodeToString(b[:]))
	debs := filepath.Join(CacheDir(), "debs")
	for _, d := range []string{build, debs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	ok := false
	defer func() {
		if !ok {
			removeTree(build)
		}
	}()
	rootfs := filepath.Join(build, "rootfs")
	logf := filepath.Join(build, "debootstrap.log")
	log, err := os.Create(logf)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	args := []string{"--variant=minbase", "--include=" + strings.Join(Packages, ","), "--cache-dir=" + debs, Suite, rootfs}
	if m := Mirror(); m != "" {
		args = append(args, m)
	}
	cmd := exec.CommandContext(ctx, "debootstrap", args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	err = cmd.Run()
	log.Close()
	if err != nil {
		out, _ := os.ReadFile(logf)
		return fmt.Errorf("debootstrap: %v\n%s", err, tail(string(out), 30))
	}
	if err := customize(rootfs); err != nil {
		return fmt.Errorf("set up the image: %w", err)
	}
	info := fmt.Sprintf("%s\nsuite: %s\nmirror: %s\npackages: %s\nbuilt: %s\n", imageVersion, Suite, Mirror(),
		strings.Join(Packages, " "), time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(filepath.Join(build, "ready"), []byte(info), 0o644); err != nil {
		return err
	}
	if _, err := os.Stat(dir); err == nil {
		if err := removeTree(dir); err != nil { // a broken earlier build
			return err
		}
	}
	if err := os.Rename(build, dir); err != nil {
		return err
	}
	ok = true
	return nil
}

// customizeSpec describes what customize does; it is part of ImageKey.
const customizeSpec = `mask apt-daily.timer apt-daily-upgrade.timer; disable ssh redis-server postfix;
no ssh host keys (each server gets its own); sshd: keys only, root by key, no DNS;
no /etc/hostname (the machine name is the host name); empty machine-id (nspawn --uuid),
/var/lib/dbus/machine-id -> /etc/machine-id`

func customize(rootfs string) error {
	chroot := func(args ...string) error {
		out, err := exec.Command("chroot", append([]string{rootfs}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("chroot %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := chroot("systemctl", "mask", "apt-daily.timer", "apt-daily-upgrade.timer"); err != nil {
		return err
	}
	if err := chroot("systemctl", "disable", "ssh.service", "redis-server.service", "postfix.service"); err != nil {
		return err
	}
	keys, _ := filepath.Glob(filepath.Join(rootfs, "etc/ssh/ssh_host_*"))
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/ssh/sshd_config.d/jclab.conf": "# The lab's sshd (internal/lab): its host key is written at boot.\n" +
			"HostKey /etc/ssh/ssh_host_ed25519_key\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n" +
			"PermitRootLogin prohibit-password\nUseDNS no\n",
		"etc/machine-id": "",
	}
	for p, content := range files {
		if err := os.WriteFile(filepath.Join(rootfs, p), []byte(content), 0o644); err != nil {
			return err
		}
	}
	if err := os.Remove(filepath.Join(rootfs, "etc/hostname")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// systemd takes a D-Bus machine ID over nspawn's --uuid: make it the same file.
	dbusID := filepath.Join(rootfs, "var/lib/dbus/machine-id")
	if err := os.Remove(dbusID); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.Symlink("/etc/machine-id", dbusID)
}

// sweepImages removes half-built images (their build was interrupted) and
// ephemeral copies no container uses, unless an image is being built.
//
// Images of other keys (an older package list) that no test used for
// unusedDays are removed too.
func sweepImages() error {
	var errs []error
	dirs, _ := filepath.Glob(filepath.Join(CacheDir(), "*"))
	var images []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "ready")); err == nil && !strings.HasPrefix(filepath.Base(d), ".") {
			images = append(images, d)
			errs = append(errs, sweepCopies(d, ""))
		}
	}
	fd, err := unix.Open(filepath.Join(CacheDir(), "lock"), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return errors.Join(errs...)
	}
	defer unix.Close(fd)
	if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
		return errors.Join(errs...) // a build is going on
	}
	builds, _ := filepath.Glob(filepath.Join(CacheDir(), ".build-*"))
	for _, b := range builds {
		errs = append(errs, removeTree(b))
	}
	for _, d := range images {
		fi, err := os.Stat(filepath.Join(d, "ready"))
		if err != nil || filepath.Base(d) == ImageKey() || time.Since(fi.ModTime()) < unusedDays*24*time.Hour {
			continue
		}
		if copies, _ := filepath.Glob(filepath.Join(d, ".#machine.*")); len(copies) > 0 || nspawnUses(d) {
			continue
		}
		errs = append(errs, removeTree(d))
	}
	return errors.Join(errs...)
}

// unusedDays is how long an image of another key is kept unused.
const unusedDays = 14

// markUsed records that the image in dir was used (the mtime of its ready
// file), so that Sweep keeps it.
func markUsed(dir string) {
	now := time.Now()
	os.Chtimes(filepath.Join(dir, "ready"), now, now)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.TrimSpace([]byte(strings.Join(lines, "\n"))))
}

// stageDir holds in-memory copies of the image, one per test process:
// $JECLOUD_LAB_STAGE, else /dev/shm/jecloud-lab; "off" turns staging off.
func stageDir() string {
	if d := os.Getenv("JECLOUD_LAB_STAGE"); d != "" {
		return d
	}
	return "/dev/shm/jecloud-lab"
}

var (
	stageMu sync.Mutex
	staged  string // this process's staged rootfs
)

// bootImage returns the root file system Boot gives to nspawn: a copy of
// the image in memory (tmpfs) when there is room, else the image itself.
// nspawn --ephemeral copies it for every server; tmpfs to tmpfs takes under
// a second, where a copy on the disks of our CI machines takes 5 to 10.
func bootImage(t testing.TB) string {
	t.Helper()
	disk := Image(t)
	stageMu.Lock()
	defer stageMu.Unlock()
	if staged != "" {
		if _, err := os.Stat(staged); err == nil {
			return staged
		}
	}
	if !stageable() {
		return disk
	}
	start := time.Now()
	dir := filepath.Join(stageDir(), fmt.Sprintf("%s.%d", ImageKey(), os.Getpid()))
	tmp := dir + ".tmp"
	if err := os.MkdirAll(stageDir(), 0o700); err != nil {
		t.Logf("lab: no in-memory copy of the image: %v", err)
		return disk
	}
	removeTree(tmp)
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Logf("lab: no in-memory copy of the image: %v", err)
		return disk
	}
	if out, err := exec.Command("cp", "-a", disk, filepath.Join(tmp, "rootfs")).CombinedOutput(); err != nil {
		removeTree(tmp)
		t.Logf("lab: no in-memory copy of the image: cp: %v: %s", err, out)
		return disk
	}
	if err := os.Rename(tmp, dir); err != nil {
		removeTree(tmp)
		t.Logf("lab: no in-memory copy of the image: %v", err)
		return disk
	}
	staged = filepath.Join(dir, "rootfs")
	t.Logf("lab: copied the image to %s in %.1fs", dir, time.Since(start).Seconds())
	return staged
}

// stageable reports whether stageDir() is on a tmpfs with room for the
// image and a few servers' copies.
func stageable() bool {
	if stageDir() == "off" {
		return false
	}
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(stageDir()), &st); err != nil {
		return false
	}
	return st.Type == unix.TMPFS_MAGIC && st.Bavail*uint64(st.Bsize) >= 4<<30
}

// Cleanup removes this process's in-memory copy of the image. Call it from
// TestMain after m.Run, when the servers are stopped; Sweep removes the
// copies of processes that are gone.
func Cleanup() error {
	stageMu.Lock()
	defer stageMu.Unlock()
	if staged == "" {
		return nil
	}
	err := removeTree(filepath.Dir(staged))
	staged = ""
	os.Remove(stageDir()) // only if empty
	return err
}

// sweepStages removes in-memory copies whose process is gone.
func sweepStages() error {
	var errs []error
	ents, _ := os.ReadDir(stageDir())
	for _, e := range ents {
		name := strings.TrimSuffix(e.Name(), ".tmp")
		i := strings.LastIndexByte(name, '.')
		if i < 0 {
			continue
		}
		pid, err := strconv.Atoi(name[i+1:])
		if err != nil || pid == os.Getpid() || unix.Kill(pid, 0) == nil {
			continue
		}
		errs = append(errs, removeTree(filepath.Join(stageDir(), e.Name())))
	}
	return errors.Join(errs...)
}
