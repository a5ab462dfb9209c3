//go:build linux

// Package lab boots real Debian servers for end-to-end tests: systemd-nspawn
// containers running systemd as PID 1, each on its own veth pair with an
// address of its own and an sshd whose host key the test knows.
//
//	srv := lab.Boot(t, 1)[0]
//	out := srv.MustExec("systemctl", "is-system-running")
//	srv.CopyIn("bin/jeagent", "/usr/local/bin/jeagent")
//	home := lab.SSHHome(t, srv) // ~/.ssh/id_ed25519 and a strict known_hosts
//
// The Debian bookworm image is built once with debootstrap and cached under
// CacheDir() (keyed by its package list and the version of the set-up done
// here); every server boots an ephemeral copy of it. Everything a server
// makes on the host (the nspawn process, its ephemeral copy, cgroups, veth,
// /run/systemd/nspawn entries) is removed when the test ends, passed or not;
// Sweep removes what an interrupted run left. See docs/lab.md.
//
// The lab needs root, systemd-nspawn, nsenter, ip and (for the first build)
// debootstrap. Tests that use it are skipped when these are missing, unless
// JECLOUD_E2E=1, where they fail. It never starts systemd on the host: only
// inside the containers.
package lab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// Prefix starts the name of every lab container, veth (after "ve-") and
// cgroup, so that Sweep can find them.
const Prefix = "jclab-"

// Subnet is the range the lab takes its /30s from: 64 servers at most at a time.
var Subnet = netip.MustParsePrefix("192.168.213.0/24")

// E2E reports whether JECLOUD_E2E=1: lab tests must run (missing tools fail them).
func E2E() bool { return os.Getenv("JECLOUD_E2E") == "1" }

// runDir holds a record and a lock file per running server
// ($JECLOUD_LAB_RUN is for the lab's own unit tests).
func runDir() string {
	if d := os.Getenv("JECLOUD_LAB_RUN"); d != "" {
		return d
	}
	return "/run/jecloud-lab"
}

// Require skips the test when the lab cannot run here (not root, a tool
// missing), or fails it when JECLOUD_E2E=1.
func Require(t testing.TB) {
	t.Helper()
	if err := check(); err != nil {
		if E2E() {
			t.Fatalf("lab: %v", err)
		}
		t.Skipf("lab: %v (JECLOUD_E2E=1 makes this a failure)", err)
	}
}

func check() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root")
	}
	tools := []string{"systemd-nspawn", "nsenter", "ip"}
	if !imageReady() {
		tools = append(tools, "debootstrap")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is missing (apt-get install -y systemd-container debootstrap iproute2 util-linux)", tool)
		}
	}
	if len(cgroupRoots()) == 0 {
		return errors.New("no cgroup file system at /sys/fs/cgroup")
	}
	return nil
}

// Server is one booted container.
type Server struct {
	Name     string     // machine name and host name, Prefix + 6 characters
	Addr     netip.Addr // the server's address (host0 in the container)
	HostAddr netip.Addr // the host's end of the veth pair (ve-NAME)
	HostKey  ssh.PublicKey

	t         testing.TB
	rec       *record
	cpid      int
	consoleF  string
	clientKey string
	done      chan struct{} // closed when systemd-nspawn has exited
	stopOnce  sync.Once
	// persist is the server's own copy of the image when it was booted with
	// Options{Persistent: true} ("" for nspawn's --ephemeral snapshot).
	persist string
}

// Options change how Boot makes servers.
type Options struct {
	// Persistent boots each server from a copy of the image of its own,
	// which outlives a reboot (Server.Reboot), instead of an --ephemeral
	// snapshot, which goes with the container. The copy is named like
	// nspawn's snapshots (.#machine.*) so that teardown and Sweep remove it.
	Persistent bool
	// CloudInit boots each server the way a cloud instance boots: its
	// cloud-init runs this user-data (NoCloud seed), ssh.service is on,
	// and the lab installs no host key nor client key: what cloud-init sets
	// up is what there is. Implies Persistent.
	CloudInit *CloudInit
}

// CloudInit is what a server booted with Options.CloudInit gets.
type CloudInit struct {
	UserData   []byte
	InstanceID string // meta-data instance-id ("": the machine name)
}

// SSHAddr is the server's sshd, ADDR:22.
func (s *Server) SSHAddr() string { return net.JoinHostPort(s.Addr.String(), "22") }

// PID is the host pid of the container's PID 1 (its systemd).
func (s *Server) PID() int { return s.cpid }

// ClientKey is the path of a private key that may log in as root.
func (s *Server) ClientKey() string { return s.clientKey }

// KnownHostsLine is the server's line for a known_hosts file, under its address.
func (s *Server) KnownHostsLine() string {
	return s.Addr.String() + " " + string(ssh.MarshalAuthorizedKey(s.HostKey))
}

// SSHHome makes a home directory whose .ssh holds the client key of the
// servers (one Boot shares one key) and a known_hosts with their host keys
// and no other, for clients that check host keys strictly.
func SSHHome(t testing.TB, servers ...*Server) string {
	t.Helper()
	home := t.TempDir()
	dot := filepath.Join(home, ".ssh")
	var kh strings.Builder
	for _, s := range servers {
		kh.WriteString(s.KnownHostsLine())
	}
	key, err := os.ReadFile(servers[0].clientKey)
	if err == nil {
		err = os.MkdirAll(dot, 0o700)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dot, "id_ed25519"), key, 0o600)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dot, "known_hosts"), []byte(kh.String()), 0o600)
	}
	if err != nil {
		t.Fatal(err)
	}
	return home
}

// Boot boots n servers from the lab image (building it first if needed) and
// waits until their systemd is up and sshd answers. They are stopped and
// everything they left on the host removed when the test ends.
func Boot(t testing.TB, n int) []*Server {
	t.Helper()
	return BootWith(t, n, Options{})
}

// BootWith is Boot with options.
func BootWith(t testing.TB, n int, o Options) []*Server {
	t.Helper()
	Require(t)
	if err := sweepOnce(); err != nil {
		t.Logf("lab: sweeping leftovers of earlier runs: %v", err)
	}
	rootfs := bootImage(t)
	dir := t.TempDir()
	clientKey, clientPub, err := newKey(dir, "client_ed25519")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	servers := make([]*Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			servers[i], errs[i] = boot(t, rootfs, dir, clientKey, clientPub, o)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("lab: boot: %v", err)
	}
	var names []string
	for _, s := range servers {
		names = append(names, s.Name+" "+s.Addr.String())
	}
	t.Logf("lab: booted %s in %.1fs", strings.Join(names, ", "), time.Since(start).Seconds())
	return servers
}

// BootOne boots one server and returns an error rather than failing the
// test, for code that boots from another goroutine (a fake cloud's
// launches). Call Image first from the test's goroutine.
func BootOne(t testing.TB, o Options) (*Server, error) {
	if err := check(); err != nil {
		return nil, err
	}
	rootfs := bootImage(t)
	dir := t.TempDir()
	clientKey, clientPub, err := newKey(dir, "client_ed25519")
	if err != nil {
		return nil, err
	}
	return boot(t, rootfs, dir, clientKey, clientPub, o)
}

func boot(t testing.TB, rootfs, dir, clientKey string, clientPub ssh.PublicKey, o Options) (s *Server, err error) {
	rec, err := allocate(filepath.Dir(rootfs))
	if err != nil {
		return nil, err
	}
	s = &Server{Name: rec.Name, t: t, rec: rec, clientKey: clientKey, done: make(chan struct{})}
	s.HostAddr, s.Addr = rec.addrs()
	s.consoleF = filepath.Join(dir, rec.Name+".console")
	if o.Persistent || o.CloudInit != nil {
		s.persist = filepath.Join(filepath.Dir(rootfs), persistPrefix+rec.Name)
		if out, err := exec.Command("cp", "-a", "--reflink=auto", rootfs, s.persist).CombinedOutput(); err != nil {
			rec.release()
			return nil, fmt.Errorf("copy the image for %s: %v: %s", rec.Name, err, out)
		}
		rootfs = s.persist
	}
	if o.CloudInit != nil {
		if err := seedCloudInit(rootfs, rec.Name, o.CloudInit); err != nil {
			rec.release()
			return nil, err
		}
	}
	if err := s.start(rootfs); err != nil {
		teardown(rec, nil) // the cgroups it may have made
		rec.release()
		return nil, err
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("lab: %v", err)
		}
	})
	defer func() {
		if err != nil {
			err = fmt.Errorf("%s: %w\nconsole:\n%s", s.Name, err, s.consoleTail(30))
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := s.findInit(ctx); err != nil {
		return s, err
	}
	if err := s.network(ctx); err != nil {
		return s, err
	}
	if err := s.waitRunning(ctx); err != nil {
		return s, err
	}
	if o.CloudInit != nil {
		return s, nil // cloud-init sets SSH up, as on a cloud
	}
	if err := s.startSSH(ctx, dir, clientPub); err != nil {
		return s, err
	}
	return s, nil
}

// seedCloudInit gives the server's own copy of the image a NoCloud seed and
// turns ssh.service on, as cloud images have it.
func seedCloudInit(rootfs, name string, ci *CloudInit) error {
	id := ci.InstanceID
	if id == "" {
		id = name
	}
	files := map[string]string{
		"var/lib/cloud/seed/nocloud/user-data": string(ci.UserData),
		"var/lib/cloud/seed/nocloud/meta-data": fmt.Sprintf("instance-id: %s\nlocal-hostname: %s\n", id, name),
		"etc/cloud/cloud.cfg.d/90-jclab.cfg":   "datasource_list: [ NoCloud, None ]\n",
		"etc/ssh/sshd_config.d/jclab.conf":     "# cloud-init servers: sshd as Debian ships it\n",
	}
	for p, content := range files {
		full := filepath.Join(rootfs, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(content), 0o600); err != nil {
			return err
		}
	}
	if out, err := exec.Command("chroot", rootfs, "systemctl", "enable", "ssh.service").CombinedOutput(); err != nil {
		return fmt.Errorf("enable ssh.service in %s: %v: %s", name, err, out)
	}
	return nil
}

// start runs systemd-nspawn in a cgroup of its own (so that containers do
// not share nspawn's payload/supervisor groups), on an OS thread kept for
// its lifetime so that its parent-death signal (SIGTERM: a clean shutdown)
// fires only if this process dies.
func (s *Server) start(rootfs string) error {
	cgroups, err := makeCgroups(s.Name)
	s.rec.Cgroups = cgroups
	if err != nil {
		return err
	}
	if err := s.rec.save(); err != nil {
		return err
	}
	console, err := os.Create(s.consoleF)
	if err != nil {
		return err
	}
	defer console.Close()
	var uuid [16]byte
	rand.Read(uuid[:])
	// $0 is the machine name, $1.. the cgroup.procs files to join before exec.
	script := `for f; do echo $$ > "$f" || exit 1; done; exec systemd-nspawn --quiet $EPHEMERAL -D "$ROOTFS" -M "$0" -b ` +
		`--console=pipe --register=no --keep-unit --network-veth --uuid="$UUID"`
	args := []string{"-c", script, s.Name}
	for _, cg := range cgroups {
		args = append(args, filepath.Join(cg, "cgroup.procs"))
	}
	cmd := exec.Command("/bin/sh", args...)
	ephemeral := "--ephemeral"
	if s.persist != "" {
		ephemeral = ""
	}
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ROOTFS=" + rootfs, "EPHEMERAL=" + ephemeral,
		"UUID=" + hex.EncodeToString(uuid[:])}
	cmd.Stdout, cmd.Stderr = console, console
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGTERM}
	started := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		cmd.Wait()
		close(s.done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start systemd-nspawn: %w", err)
	}
	s.rec.NspawnPID = cmd.Process.Pid
	s.rec.NspawnStart, _ = procStart(cmd.Process.Pid)
	return s.rec.save()
}

// findInit waits for the container's systemd: the child of systemd-nspawn
// named systemd (nspawn copies the image first, a second or two).
func (s *Server) findInit(ctx context.Context) error {
	for {
		if pid := findChild(s.rec.NspawnPID, "systemd"); pid > 0 {
			s.cpid = pid
			s.rec.InitPID = pid
			s.rec.InitStart, _ = procStart(pid)
			return s.rec.save()
		}
		select {
		case <-s.done:
			return errors.New("systemd-nspawn exited")
		case <-ctx.Done():
			return errors.New("the container's systemd did not start")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// network gives both ends of the veth pair their /30 addresses.
func (s *Server) network(ctx context.Context) error {
	veth := "ve-" + s.Name
	for {
		if _, err := net.InterfaceByName(veth); err == nil {
			break
		}
		select {
		case <-s.done:
			return errors.New("systemd-nspawn exited")
		case <-ctx.Done():
			return fmt.Errorf("no %s on the host", veth)
		case <-time.After(20 * time.Millisecond):
		}
	}
	host := fmt.Sprintf("%s/30", s.HostAddr)
	guest := fmt.Sprintf("%s/30", s.Addr)
	for _, c := range [][]string{
		{"ip", "addr", "add", host, "dev", veth},
		{"ip", "link", "set", veth, "up"},
		{"nsenter", "-t", fmt.Sprint(s.cpid), "-n", "--", "ip", "addr", "add", guest, "dev", "host0"},
		{"nsenter", "-t", fmt.Sprint(s.cpid), "-n", "--", "ip", "link", "set", "host0", "up"},
	} {
		if out, err := exec.CommandContext(ctx, c[0], c[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(c, " "), err, out)
		}
	}
	return nil
}

// waitRunning waits for `systemctl is-system-running --wait`: running, or
// degraded (a failed unit is logged, not fatal).
func (s *Server) waitRunning(ctx context.Context) error {
	for {
		out, err := s.Exec(ctx, "systemctl", "is-system-running", "--wait")
		state := strings.TrimSpace(out)
		switch {
		case state == "running":
			return nil
		case state == "degraded":
			failed, _ := s.Exec(ctx, "systemctl", "--failed", "--no-legend", "--plain")
			s.t.Logf("lab: %s is degraded; failed units:\n%s", s.Name, failed)
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("systemctl is-system-running: %q, %v", state, err)
		}
		// Too early for the bus ("Failed to connect to bus"), or starting.
		time.Sleep(100 * time.Millisecond)
	}
}

// startSSH gives sshd a fresh host key, authorizes the client key for root,
// writes /etc/hosts and starts ssh.service, then waits until it answers.
func (s *Server) startSSH(ctx context.Context, dir string, clientPub ssh.PublicKey) error {
	hostKey, hostPub, err := newKey(dir, s.Name+"_host_ed25519")
	if err != nil {
		return err
	}
	s.HostKey = hostPub
	priv, err := os.ReadFile(hostKey)
	if err != nil {
		return err
	}
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n", s.Name)
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{"/etc/ssh/ssh_host_ed25519_key", priv, 0o600},
		{"/etc/ssh/ssh_host_ed25519_key.pub", ssh.MarshalAuthorizedKey(hostPub), 0o644},
		{"/root/.ssh/authorized_keys", ssh.MarshalAuthorizedKey(clientPub), 0o600},
		{"/etc/hosts", []byte(hosts), 0o644},
	} {
		if err := s.WriteFile(f.path, f.data, f.mode); err != nil {
			return err
		}
	}
	if out, err := s.Exec(ctx, "sh", "-c", "chmod 700 /root/.ssh && systemctl start ssh.service"); err != nil {
		return fmt.Errorf("start sshd: %v\n%s", err, out)
	}
	for {
		c, err := net.DialTimeout("tcp", s.SSHAddr(), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sshd does not answer on %s: %v", s.SSHAddr(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Command returns a command that runs argv in the container: in all its
// namespaces (nsenter), as root, with a plain environment. Its processes are
// not in a unit of the container's systemd; use systemctl or SSH for that.
func (s *Server) Command(ctx context.Context, argv ...string) *exec.Cmd {
	args := append([]string{"-t", fmt.Sprint(s.cpid), "-m", "-u", "-i", "-n", "-p", "-r", "-w", "--"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
		"LANG=C.UTF-8", "TERM=dumb", "USER=root", "LOGNAME=root", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Exec runs argv in the container and returns its output (stdout and
// stderr). A non-zero exit is an error that quotes the output.
func (s *Server) Exec(ctx context.Context, argv ...string) (string, error) {
	var out bytes.Buffer
	cmd := s.Command(ctx, argv...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s on %s: %w: %s", strings.Join(argv, " "), s.Name, err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// MustExec is Exec with a 2-minute limit that fails the test on error. Call
// it from the test's goroutine.
func (s *Server) MustExec(argv ...string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := s.Exec(ctx, argv...)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// CopyIn copies a host file into the container, keeping its permission bits.
func (s *Server) CopyIn(hostPath, containerPath string) error {
	data, err := os.ReadFile(hostPath)
	if err != nil {
		return err
	}
	fi, err := os.Stat(hostPath)
	if err != nil {
		return err
	}
	return s.WriteFile(containerPath, data, fi.Mode().Perm())
}

// WriteFile writes a file in the container (atomically: temp file and
// rename, so a running binary can be replaced), making missing parent
// directories. Paths resolve inside the container's root (/proc/PID/root
// with RESOLVE_IN_ROOT), so its symlinks never lead out to the host.
func (s *Server) WriteFile(containerPath string, data []byte, mode os.FileMode) error {
	root, err := s.openRoot()
	if err != nil {
		return err
	}
	defer unix.Close(root)
	rel := relPath(containerPath)
	dir, base := filepath.Split(rel)
	if base == "" {
		return fmt.Errorf("%s: not a file path", containerPath)
	}
	dfd, err := mkdirAllIn(root, dir)
	if err != nil {
		return fmt.Errorf("%s:%s: %w", s.Name, containerPath, err)
	}
	defer unix.Close(dfd)
	tmp := "." + base + ".jclab-tmp"
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(mode.Perm()))
	if err != nil {
		return fmt.Errorf("%s:%s: %w", s.Name, containerPath, err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode.Perm())
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dfd, tmp, dfd, base)
	}
	if err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return fmt.Errorf("%s:%s: %w", s.Name, containerPath, err)
	}
	return nil
}

// ReadFile reads a file in the container.
func (s *Server) ReadFile(containerPath string) ([]byte, error) {
	root, err := s.openRoot()
	if err != nil {
		return nil, err
	}
	defer unix.Close(root)
	fd, err := openIn(root, relPath(containerPath), unix.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("%s:%s: %w", s.Name, containerPath, err)
	}
	f := os.NewFile(uintptr(fd), containerPath)
	defer f.Close()
	return io.ReadAll(f)
}

func (s *Server) openRoot() (int, error) {
	return unix.Open(fmt.Sprintf("/proc/%d/root", s.cpid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

func relPath(p string) string {
	return strings.TrimPrefix(filepath.Clean("/"+p), "/")
}

// openIn opens rel under root as if root were "/".
func openIn(root int, rel string, flags int) (int, error) {
	if rel == "" {
		rel = "."
	}
	return unix.Openat2(root, rel, &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
}

// mkdirAllIn makes dir (relative) under root and returns it opened (O_PATH).
func mkdirAllIn(root int, dir string) (int, error) {
	cur := "."
	for _, c := range strings.Split(strings.Trim(dir, "/"), "/") {
		if c == "" {
			continue
		}
		next := filepath.Join(cur, c)
		fd, err := openIn(root, next, unix.O_PATH|unix.O_DIRECTORY)
		if err == nil {
			unix.Close(fd)
		} else if errors.Is(err, unix.ENOENT) {
			pfd, err := openIn(root, cur, unix.O_PATH|unix.O_DIRECTORY)
			if err != nil {
				return -1, err
			}
			err = unix.Mkdirat(pfd, c, 0o755)
			unix.Close(pfd)
			if err != nil && !errors.Is(err, unix.EEXIST) {
				return -1, err
			}
		} else {
			return -1, err
		}
		cur = next
	}
	return openIn(root, cur, unix.O_PATH|unix.O_DIRECTORY)
}

// Console returns what the container wrote to its console so far.
func (s *Server) Console() string {
	b, _ := os.ReadFile(s.consoleF)
	return string(b)
}

func (s *Server) consoleTail(n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s.Console()))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stop shuts the server down (SIGTERM to systemd-nspawn: a clean shutdown;
// SIGKILL after 20 s) and removes everything it left on the host. The test's
// cleanup calls it; calling it earlier is fine.
func (s *Server) Stop() error {
	var err error
	s.stopOnce.Do(func() {
		if s.t.Failed() && s.cpid > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			out, err := s.Exec(ctx, "sh", "-c", "systemctl --failed --no-legend --plain; journalctl -b --no-pager -n 60")
			cancel()
			if err != nil {
				out = err.Error()
			}
			s.t.Logf("lab: %s before it stops:\n%s\nconsole:\n%s", s.Name, out, s.consoleTail(20))
		}
		err = teardown(s.rec, s.done)
		s.rec.release()
	})
	return err
}

// newKey writes a new ed25519 private key (OpenSSH format) into dir.
func newKey(dir, name string) (string, ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return "", nil, err
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", nil, err
	}
	sp, err := ssh.NewPublicKey(pub)
	return p, sp, err
}

// Reboot reboots a server booted with Options{Persistent: true}: systemd in
// the container shuts down and nspawn exits, as on a real machine; then
// the lab starts it again from the same disk, gives it its address back,
// waits for systemd and starts sshd (whose keys are on that disk).
func (s *Server) Reboot() error {
	if s.persist == "" {
		return fmt.Errorf("lab: %s was not booted with Options{Persistent: true}: it cannot reboot", s.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s.Exec(ctx, "systemctl", "reboot") // the command may die with the container
	select {
	case <-s.done:
	case <-ctx.Done():
		return fmt.Errorf("lab: %s did not shut down for the reboot", s.Name)
	}
	// What the container's first life left on the host, as teardown would.
	if err := errors.Join(removeCgroups(s.Name), removeNspawnRun(s.Name)); err != nil {
		return fmt.Errorf("lab: reboot %s: %w", s.Name, err)
	}
	s.done = make(chan struct{})
	if err := s.start(s.persist); err != nil {
		return fmt.Errorf("lab: reboot %s: %w", s.Name, err)
	}
	for _, step := range []func(context.Context) error{s.findInit, s.network, s.waitRunning} {
		if err := step(ctx); err != nil {
			return fmt.Errorf("lab: reboot %s: %w\nconsole:\n%s", s.Name, err, s.consoleTail(30))
		}
	}
	if out, err := s.Exec(ctx, "systemctl", "start", "ssh.service"); err != nil {
		return fmt.Errorf("lab: reboot %s: start sshd: %v\n%s", s.Name, err, out)
	}
	return nil
}
