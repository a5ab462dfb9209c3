package oneoff

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"

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
