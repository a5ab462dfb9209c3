package oneoff

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/jecloud/jecloud/internal/appspec"
	"github.com/jecloud/jecloud/internal/appuser"
	"github.com/jecloud/jecloud/internal/state"
)

// Live returns the process that `jeagent run` starts in ae's live release
// (versions/current): the app's user, the runtime a hook knows, the limits
// of the web process type (the defaults when there is none), and PORT, a
// port free on this server now, so that a server started by hand can
// listen.
func Live(l state.Layout, ae state.AppEnv, hooks []any) (Process, error) {
	v, err := os.Readlink(l.Current(ae))
	if errors.Is(err, fs.ErrNotExist) {
		return Process{}, fmt.Errorf("%s has no live release on this server (no %s): deploy it first (jepush DIR ENV)", ae, l.Current(ae))
	}
	if err != nil {
		return Process{}, err
	}
	dir := l.Release(ae, v)
	spec, err := appspec.Read(dir)
	if err != nil {
		return Process{}, fmt.Errorf("the live release %s: %w", v, err)
	}
	typ := "web"
	if _, ok := spec.Processes[typ]; !ok {
		typ = "run" // not a process type: the defaults
	}
	p, err := For(l.Root, ae.App, ae.Env, l.AppDir(ae), dir, spec, typ, hooks)
	if err != nil {
		return Process{}, err
	}
	if _, _, err := appuser.IDs(p.User); err != nil {
		return Process{}, fmt.Errorf("the app's user %s does not exist on this server (%v): deploy %s first", p.User, err, ae)
	}
	port, err := freePort()
	if err != nil {
		return Process{}, err
	}
	p.Vars = map[string]string{"PORT": strconv.Itoa(port)}
	return p, nil
}

// freePort returns a TCP port that nothing listens on now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, fmt.Errorf("find a free port for PORT: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Run runs argv as p in a transient unit of its own with this program's
// stdin, stdout and stderr passed through (systemd-run --pipe), and returns
// the command's exit status. Unlike Exec it stays, to stop the unit when
// the caller goes away: a signal (SIGINT, SIGTERM, SIGHUP), or the reader
// of its stdout gone (the SSH session of a jepush stopped with Ctrl-C is
// closed; sshd signals nothing through sudo). Without this the command
// would run on until it ends or writes.
func Run(p Process, argv []string) (int, error) {
	name := Unit(p.App, p.Env, "run-"+strconv.Itoa(os.Getpid()))
	args, err := p.SystemdRun(name, Pipe, argv)
	if err != nil {
		return 0, err
	}
	bin, err := exec.LookPath(args[0])
	if err != nil {
		return 0, fmt.Errorf("systemd-run: %w (jeagent run needs systemd)", err)
	}
	cmd := exec.Command(bin, args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	defer signal.Stop(sig)
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err = <-waited:
	case <-sig:
		stopUnit(name)
		err = <-waited
	case <-hangup(int(os.Stdout.Fd())):
		stopUnit(name)
		err = <-waited
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	return 0, err
}

// hangup is closed when fd, a pipe or socket written to, has no reader any
// more (poll's POLLERR or POLLHUP). A file or a terminal never closes it.
func hangup(fd int) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		fds := []unix.PollFd{{Fd: int32(fd)}}
		for {
			n, err := unix.Poll(fds, -1)
			if err == unix.EINTR {
				continue
			}
			if err != nil || n == 0 {
				return
			}
			if fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
				close(ch)
			}
			return
		}
	}()
	return ch
}

// Exec replaces this program with systemd-run running argv as p in a
// transient unit of its own (jecloud-APP_ENV_run-PID): systemd-run then
// holds the caller's terminal or streams, passes signals and window
// size changes on, and exits with the command's exit status.
func Exec(p Process, mode Mode, argv []string) error {
	args, err := p.SystemdRun(Unit(p.App, p.Env, "run-"+strconv.Itoa(os.Getpid())), mode, argv)
	if err != nil {
		return err
	}
	bin, err := exec.LookPath(args[0])
	if err != nil {
		return fmt.Errorf("systemd-run: %w (jeagent run needs systemd)", err)
	}
	// systemd-run reads nothing of the caller's environment into the unit
	// (its variables are --setenv's); it keeps a minimal one of its own.
	return syscall.Exec(bin, args, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=" + termOr(os.Getenv("TERM"))})
}

func termOr(t string) string {
	if t == "" {
		return "dumb"
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '+' || c == '_') {
			return "dumb"
		}
	}
	return t
}
