// Package mongodb is the built-in hook for apps that declare MongoDB
// ([services] mongodb = "7.0" in jecloud.toml). In `install` it checks
// the server's mongod against the declared version (installing MongoDB's
// official package when server.json says where from), and runs one
// instance per app environment: its own unit, port, data directory and
// users, authentication on, as the app's own user. The app gets MONGO_URL
// through APP/ENV/services.env. The package also dumps and restores an
// instance for backups. See docs/services.md.
package mongodb

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
	"github.com/coreos/go-systemd/v22/util"
	"github.com/jecloud/jecloud/hooks/internal/backuptimer"
	"github.com/jecloud/jecloud/hooks/internal/builtin"
	"github.com/jecloud/jecloud/hooks/internal/svcfile"
	"github.com/jecloud/jecloud/internal/appuser"
	"github.com/jecloud/jecloud/internal/hook"
	"github.com/jecloud/jecloud/internal/ports"
	"github.com/jecloud/jecloud/internal/sysd"
	"github.com/jecloud/jecloud/systemd"
)

// Hook is the MongoDB hook.
type Hook struct {
	UnitDir string
	// Active reports whether the hook can work here (systemd is PID 1).
	Active func() bool
}

// New returns the hook with its defaults.
func New() *Hook {
	return &Hook{UnitDir: sysd.UnitDir, Active: util.IsRunningSystemd}
}

func (h *Hook) Name() string { return "mongodb" }

// Run sets MongoDB up in the install phase (Install); the other phases are
// not its business.
func (h *Hook) Run(ctx context.Context, req hook.Request, log io.Writer) (hook.Response, error) {
	return builtin.Run(ctx, h, builtin.Options{Service: "mongodb", Systemd: h.Active, Label: "MongoDB"}, req, log)
}

// Install runs the app environment's MongoDB, of the declared version.
func (h *Hook) Install(ctx context.Context, e builtin.Env) error {
	return h.install(ctx, e.Req, e.Want, e.Log)
}

// instance is one app environment's MongoDB.
type instance struct {
	app, env, dir string // dir: ROOT/APP/ENV
	port          int
	user          string // the app's system user
}

// newInstance is the instance of app env, whose directory is dir (ROOT/APP/ENV).
func newInstance(dir, app, env string) instance {
	// A name taken by someone else is refused by appuser.Ensure, before
	// the unit is written.
	user, err := appuser.Resolve(app, env)
	if err != nil {
		user = appuser.Name(app, env)
	}
	return instance{app: app, env: env, dir: dir, user: user}
}

func (i instance) unit() string     { return sysd.AppPrefix(i.app, i.env) + "mongodb.service" }
func (i instance) dataDir() string  { return filepath.Join(i.dir, "mongodb") }
func (i instance) confPath() string { return filepath.Join(i.dir, "mongod.conf") }

// The instance's two database users: an administrator the agent uses, and
// the app's own user, limited to the app's database.
func (i instance) adminPasswordFile() string { return filepath.Join(i.dir, "mongodb.admin.password") }
func (i instance) appPasswordFile() string   { return filepath.Join(i.dir, "mongodb.password") }

// database is the app's database: named after the app.
func (i instance) database() string { return i.app }

const (
	adminUser = "jecloud-admin"
	appUser   = "app"
)

func (i instance) url(user, password, db string) string {
	return fmt.Sprintf("mongodb://%s:%s@127.0.0.1:%d/%s?authSource=admin", user, password, i.port, db)
}

func (h *Hook) install(ctx context.Context, req hook.Request, want string, log io.Writer) error {
	set, err := readSettings(req)
	if err != nil {
		return err
	}
	if err := ensureServer(ctx, set, want, log); err != nil {
		return err
	}
	i := newInstance(req.AppDir, req.App, req.Env)
	uid, gid, err := appuser.Ensure(req.App, req.Env, i.dir, log)
	if err != nil {
		return err
	}
	if i.port, err = ports.Allocate(req.Root, i.dir, "mongodb", set.portBase()); err != nil {
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
	// The unit named before issue #17 (the same port) stops first.
	if err := sysd.RetireLegacyApp(ctx, h.UnitDir, i.app, i.env, []string{"mongodb.service"}, log); err != nil {
		return err
	}
	if err := sysd.Up(ctx, h.UnitDir, i.unit(), sysd.Serialize(i.unitFile(set.server())), confChanged); err != nil {
		return err
	}
	appPassword, err := ensureUsers(ctx, i, 60*time.Second)
	if err != nil {
		return fmt.Errorf("%s: %w", i.unit(), err)
	}
	if err := svcfile.SetServiceVar(i.dir, "MONGO_URL", i.url(appUser, appPassword, i.database()), gid); err != nil {
		return err
	}
	// A backup setting gone wrong must not stop the deploy: status flags the missing backups.
	if err := backuptimer.Ensure(ctx, h.UnitDir, systemd.Exec(), req, "mongodb", log); err != nil {
		fmt.Fprintf(log, "warning: backups of %s/%s mongodb are not scheduled: %v\n", i.app, i.env, err)
	}
	fmt.Fprintf(log, "MongoDB for %s/%s is up on 127.0.0.1:%d, database %q (MONGO_URL in %s)\n",
		i.app, i.env, i.port, i.database(), filepath.Join(i.dir, appuser.ServicesEnv))
	return nil
}

// conf is the instance's mongod.conf: loopback only, authentication on,
// its own data directory, logs to stdout (the journal).
func (i instance) conf() string {
	return strings.Join([]string{
		"# Written by jeagent's mongodb hook: edits are lost.",
		"storage:",
		"  dbPath: " + i.dataDir(),
		"net:",
		"  port: " + strconv.Itoa(i.port),
		"  bindIp: 127.0.0.1",
		"security:",
		"  authorization: enabled",
		"processManagement:",
		"  fork: false",
		"",
	}, "\n")
}

func (i instance) unitFile(server string) []*unit.UnitOption {
	o := sysd.Opt
	return append([]*unit.UnitOption{
		o("Unit", "Description", fmt.Sprintf("MongoDB of %s %s (JeCloud)", i.app, i.env)),
		o("Unit", "After", "network.target"),
		o("Unit", "StartLimitIntervalSec", "0"),
		o("Service", "Type", "simple"),
		o("Service", "User", i.user),
		o("Service", "Group", i.user),
		o("Service", "ExecStart", server+" --config "+i.confPath()),
		o("Service", "Restart", "always"),
		o("Service", "RestartSec", "1"),
		o("Service", "UMask", "0077"),
		o("Service", "LimitNOFILE", "64000"),
		o("Service", "TimeoutStopSec", "60"),
		o("Install", "WantedBy", "multi-user.target"),
	}, append(limits(), sysd.Sandbox(i.dataDir())...)...)
}

// limits bound one mongod: a thread per connection (its own default cap
// is 65536 connections; 1024 tasks is hundreds of them); memory up to 60 %
// of the RAM, throttled above 50 %: WiredTiger's cache takes half of (RAM -
// 1 GB) by default, and mongod sizes it to the cgroup's limit when it is
// lower. Above, the kernel kills mongod and systemd restarts it (it
// recovers from its journal).
func limits() []*unit.UnitOption { return sysd.Limits(1024, "50%", "60%", 100) }

var versionRE = regexp.MustCompile(`db version v(\d+\.\d+\.\d+)`)

// checkVersion compares `mongod --version` output with the declared
// version ("7.0" matches 7.0.x).
func checkVersion(server, out, want string) error {
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("%s --version said %q: no \"db version\" in it", server, out)
	}
	have := m[1]
	if want != "" && have != want && !strings.HasPrefix(have, strings.TrimSuffix(want, ".x")+".") {
		return fmt.Errorf("jecloud.toml asks for mongodb %q but %s is %s: declare \"%s\" or a prefix of it, or install that version",
			want, server, have, have)
	}
	return nil
}
