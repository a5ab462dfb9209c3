// Package redis is the built-in hook for apps that declare Redis
// ([services] redis = "7" in jecloud.toml). In `install` it makes sure a
// redis-server of that version is on the server (Debian's package), and
// runs one instance per app environment: its own unit, port, data
// directory and password, persistence on, as the app's own user; the app
// gets REDIS_URL through APP/ENV/services.env. See docs/services.md.
package redis

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
	"github.com/coreos/go-systemd/v22/util"
	"github.com/jecloud/jecloud/hooks/internal/backuptimer"
	"github.com/jecloud/jecloud/hooks/internal/builtin"
	"github.com/jecloud/jecloud/hooks/internal/retry"
	"github.com/jecloud/jecloud/hooks/internal/svcfile"
	"github.com/jecloud/jecloud/internal/appuser"
	"github.com/jecloud/jecloud/internal/hook"
	"github.com/jecloud/jecloud/internal/ports"
	"github.com/jecloud/jecloud/internal/sysd"
	"github.com/jecloud/jecloud/systemd"
)

// PortBase is where Redis ports start.
const PortBase = 6400

// Hook is the Redis hook.
type Hook struct {
	UnitDir string
	// Server is the redis-server binary.
	Server string
	// Active reports whether the hook can work here (systemd is PID 1).
	Active func() bool
	// Stop and Start control an instance's unit during a restore; nil:
	// through systemd.
	Stop, Start func(unit string) error
}

// New returns the hook with its defaults.
func New() *Hook {
	return &Hook{
		UnitDir: sysd.UnitDir,
		Server:  "/usr/bin/redis-server",
		Active:  util.IsRunningSystemd,
	}
}

func (h *Hook) Name() string { return "redis" }

// Run sets Redis up in the install phase (Install); the other phases are
// not its business.
func (h *Hook) Run(ctx context.Context, req hook.Request, log io.Writer) (hook.Response, error) {
	return builtin.Run(ctx, h, builtin.Options{Service: "redis", Systemd: h.Active, Label: "Redis"}, req, log)
}

// Install runs the app environment's Redis, of the declared version.
func (h *Hook) Install(ctx context.Context, e builtin.Env) error {
	return h.install(ctx, e.Req, e.Want, e.Log)
}

// instance is one app environment's Redis.
type instance struct {
	app, env, dir string // dir: ROOT/APP/ENV
	port          int
	password      string
	user          string
	unitName      string // set when it may differ from the new scheme's (sysd.AppUnit)
}

func (i instance) unit() string {
	if i.unitName != "" {
		return i.unitName
	}
	return sysd.AppPrefix(i.app, i.env) + "redis.service"
}
func (i instance) dataDir() string  { return filepath.Join(i.dir, "redis") }
func (i instance) confPath() string { return filepath.Join(i.dir, "redis.conf") }
func (i instance) url() string {
	return fmt.Sprintf("redis://:%s@127.0.0.1:%d/0", i.password, i.port)
}

func (h *Hook) install(ctx context.Context, req hook.Request, want string, log io.Writer) error {
	if err := h.ensureServer(want, log); err != nil {
		return err
	}
	i := instance{app: req.App, env: req.Env, dir: req.AppDir}
	uid, gid, err := appuser.Ensure(req.App, req.Env, i.dir, log)
	if err != nil {
		return err
	}
	if i.user, err = appuser.Resolve(req.App, req.Env); err != nil {
		return err
	}
	if i.port, err = ports.Allocate(req.Root, i.dir, "redis", PortBase); err != nil {
		return err
	}
	if i.password, err = svcfile.Password(filepath.Join(i.dir, "redis.password")); err != nil {
		return err
	}
	if err := os.MkdirAll(i.dataDir(), 0o750); err != nil {
		return err
	}
	if err := appuser.Adopt(i.dataDir(), uid, gid); err != nil {
		return err
	}
	confChanged, err := svcfile.WriteIfChanged(i.confPath(), i.conf(), gid)
	if err != nil {
		return err
	}
	if err := svcfile.SetServiceVar(i.dir, "REDIS_URL", i.url(), gid); err != nil {
		return err
	}
	// The unit named before issue #17 (the same port) stops first.
	if err := sysd.RetireLegacyApp(ctx, h.UnitDir, i.app, i.env, []string{"redis.service"}, log); err != nil {
		return err
	}
	if err := sysd.Up(ctx, h.UnitDir, i.unit(), sysd.Serialize(h.unitFile(i)), confChanged); err != nil {
		return err
	}
	if err := ping(ctx, i.port, i.password, 30*time.Second); err != nil {
		return fmt.Errorf("%s started but does not answer on port %d: %w", i.unit(), i.port, err)
	}
	// A backup setting gone wrong must not stop the deploy: status flags the missing backups.
	if err := backuptimer.Ensure(ctx, h.UnitDir, systemd.Exec(), req, "redis", log); err != nil {
		fmt.Fprintf(log, "warning: backups of %s/%s redis are not scheduled: %v\n", i.app, i.env, err)
	}
	fmt.Fprintf(log, "Redis for %s/%s is up on 127.0.0.1:%d (REDIS_URL in %s)\n", i.app, i.env, i.port, filepath.Join(i.dir, appuser.ServicesEnv))
	return nil
}

var versionRE = regexp.MustCompile(`v=(\d+\.\d+\.\d+)`)

// ensureServer installs Debian's redis-server if it is missing, then checks
// its version against the declared one ("7" matches 7.x.y).
func (h *Hook) ensureServer(want string, log io.Writer) error {
	if _, err := os.Stat(h.Server); err != nil {
		fmt.Fprintln(log, "installing redis-server (Debian's package)")
		cmd := exec.Command("apt-get", "install", "-y", "--no-install-recommends", "redis-server")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get install redis-server: %w", err)
		}
		// Debian starts its own instance; JeCloud runs one per app instead.
		exec.Command("systemctl", "disable", "--now", "redis-server.service").Run()
	}
	out, err := exec.Command(h.Server, "--version").Output()
	if err != nil {
		return fmt.Errorf("%s --version: %w", h.Server, err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return fmt.Errorf("%s --version said %q: no version in it", h.Server, out)
	}
	have := string(m[1])
	if want != "" && have != want && !strings.HasPrefix(have, strings.TrimSuffix(want, ".x")+".") {
		return fmt.Errorf("jecloud.toml asks for redis %q but this server has %s (Debian's package): declare \"%s\" or a prefix of it",
			want, have, have)
	}
	return nil
}

// conf is the instance's redis.conf: loopback only, a password,
// append-only persistence in its data dir, logs to the journal.
func (i instance) conf() string {
	return strings.Join([]string{
		"# Written by jeagent's redis hook: edits are lost.",
		"bind 127.0.0.1 -::1",
		"protected-mode yes",
		"port " + strconv.Itoa(i.port),
		"requirepass " + i.password,
		"dir " + i.dataDir(),
		"appendonly yes",
		"appendfsync everysec",
		"save 900 1",
		"save 300 10",
		// Backups take a snapshot the way a replica does (redis-cli --rdb):
		// start it at once rather than wait 5 s for more replicas.
		"repl-diskless-sync-delay 0",
		"daemonize no",
		"supervised no",
		`logfile ""`,
		"",
	}, "\n")
}

func (h *Hook) unitFile(i instance) []*unit.UnitOption {
	o := sysd.Opt
	return append([]*unit.UnitOption{
		o("Unit", "Description", fmt.Sprintf("Redis of %s %s (JeCloud)", i.app, i.env)),
		o("Unit", "After", "network.target"),
		o("Unit", "StartLimitIntervalSec", "0"),
		o("Service", "Type", "simple"),
		o("Service", "User", i.user),
		o("Service", "Group", i.user),
		o("Service", "ExecStart", h.Server+" "+i.confPath()),
		o("Service", "Restart", "always"),
		o("Service", "RestartSec", "1"),
		o("Service", "UMask", "0077"),
		o("Install", "WantedBy", "multi-user.target"),
	}, append(limits(), sysd.Sandbox(i.dataDir())...)...)
}

// limits bound one Redis instance: a few threads and one child at a time
// (a snapshot or an append-only file rewrite), so 128 tasks is plenty; memory
// up to 40 % of the server's RAM, throttled above 35 %. A snapshot's child
// shares the parent's pages until they change, so the instance's data
// should stay well under a third of the RAM; above the limit the kernel
// kills the instance and systemd restarts it from its files, rather than
// letting it take the apps' memory.
func limits() []*unit.UnitOption { return sysd.Limits(128, "35%", "40%", 100) }

// ping authenticates and PINGs until Redis answers +PONG or timeout passes.
func ping(ctx context.Context, port int, password string, timeout time.Duration) error {
	return retry.Until(ctx, timeout, 200*time.Millisecond, func() error { return pingOnce(port, password) })
}

func pingOnce(port int, password string) error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "AUTH %s\r\nPING\r\n", password)
	r := bufio.NewReader(c)
	for _, want := range []string{"+OK", "+PONG"} {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.TrimSpace(line) != want {
			return fmt.Errorf("redis answered %q", strings.TrimSpace(line))
		}
	}
	return nil
}
