// Command mongostandin stands in for mongod in JeCloud's tests, where no
// MongoDB can be installed: it is FerretDB v1.24 (SQLite storage) behind
// mongod's command line and configuration file, so that the MongoDB hook
// runs it exactly as it runs mongod (`mongostandin --config mongod.conf`).
//
// What it does like mongod: net.port, net.bindIp, storage.dbPath and
// security.authorization from the YAML file (or --port, --bind_ip,
// --dbpath, --auth); SCRAM authentication when authorization is enabled;
// the "localhost exception" (while the instance has no user, a client may
// create the first one without logging in); roles are accepted but not
// enforced (FerretDB 1.x has no authorization); `--version` prints
// "db version v7.0.0"; SIGTERM shuts it down cleanly.
//
// The module path lies under github.com/FerretDB/FerretDB on purpose: only
// that lets it import FerretDB's internal packages, the only way to turn
// authentication on (the public ferretdb package cannot). It is a
// separate module so that the main module does not depend on FerretDB.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/FerretDB/FerretDB/internal/clientconn"
	"github.com/FerretDB/FerretDB/internal/clientconn/connmetrics"
	"github.com/FerretDB/FerretDB/internal/handler/registry"
	"github.com/FerretDB/FerretDB/internal/util/state"
	"github.com/FerretDB/wire"
	"github.com/FerretDB/wire/wirebson"
	"gopkg.in/yaml.v3"
)

// config is the part of mongod's configuration file the stand-in honours.
type config struct {
	Net struct {
		Port   int    `yaml:"port"`
		BindIP string `yaml:"bindIp"`
	} `yaml:"net"`
	Storage struct {
		DBPath string `yaml:"dbPath"`
	} `yaml:"storage"`
	Security struct {
		Authorization string `yaml:"authorization"`
	} `yaml:"security"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mongostandin:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mongostandin", flag.ContinueOnError)
	confPath := fs.String("config", "", "mongod configuration `FILE` (YAML)")
	port := fs.Int("port", 0, "TCP port (default 27017)")
	bind := fs.String("bind_ip", "", "addresses to listen on, comma-separated (the first is used)")
	dbPath := fs.String("dbpath", "", "data directory")
	auth := fs.Bool("auth", false, "require authentication")
	version := fs.Bool("version", false, "print the version")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version {
		fmt.Println("db version v7.0.0")
		fmt.Println("(FerretDB v1.24.0 with SQLite: JeCloud's test stand-in for mongod)")
		return nil
	}
	var c config
	if *confPath != "" {
		data, err := os.ReadFile(*confPath)
		if err != nil {
			return err
		}
		if err := yaml.Unmarshal(data, &c); err != nil {
			return fmt.Errorf("%s: %w", *confPath, err)
		}
	}
	if *port != 0 {
		c.Net.Port = *port
	}
	if *bind != "" {
		c.Net.BindIP = *bind
	}
	if *dbPath != "" {
		c.Storage.DBPath = *dbPath
	}
	if *auth {
		c.Security.Authorization = "enabled"
	}
	if c.Net.Port == 0 {
		c.Net.Port = 27017
	}
	if c.Net.BindIP == "" {
		c.Net.BindIP = "127.0.0.1"
	}
	if c.Storage.DBPath == "" {
		return errors.New("no dbPath: set storage.dbPath in the configuration file or --dbpath")
	}
	if fi, err := os.Stat(c.Storage.DBPath); err != nil || !fi.IsDir() {
		return fmt.Errorf("dbPath %s does not exist: create it first (mongod does not either)", c.Storage.DBPath)
	}
	switch c.Security.Authorization {
	case "", "disabled", "enabled":
	default:
		return fmt.Errorf("security.authorization %q: use enabled or disabled", c.Security.Authorization)
	}
	return serve(c)
}

func serve(c config) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	sp, err := state.NewProvider("")
	if err != nil {
		return err
	}
	if err := sp.Update(func(s *state.State) { s.DisableTelemetry(); s.TelemetryLocked = true }); err != nil {
		return err
	}
	auth := c.Security.Authorization == "enabled"
	addr := strings.Split(c.Net.BindIP, ",")[0] + ":" + strconv.Itoa(c.Net.Port)
	metrics := connmetrics.NewListenerMetrics()
	h, closeBackend, err := registry.NewHandler("sqlite", &registry.NewHandlerOpts{
		Logger:        logger,
		ConnMetrics:   metrics.ConnMetrics,
		StateProvider: sp,
		TCPHost:       addr,
		SQLiteURL:     "file:" + filepath.Clean(c.Storage.DBPath) + "/",
		TestOpts: registry.TestOpts{
			CappedCleanupPercentage: 10,
			BatchSize:               100,
			EnableNewAuth:           auth,
		},
	})
	if err != nil {
		if closeBackend != nil {
			closeBackend()
		}
		return err
	}
	defer closeBackend()
	if auth {
		cmds := h.Commands()
		create := cmds["createUser"]
		create.Handler = withoutRoles(localhostException(create.Handler, h.MsgCreateUser, c.Storage.DBPath))
		update := cmds["updateUser"]
		update.Handler = withoutRoles(update.Handler)
	}
	l, err := clientconn.Listen(&clientconn.NewListenerOpts{
		TCP: addr, Mode: clientconn.NormalMode, Metrics: metrics, Handler: h, Logger: logger,
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	fmt.Fprintf(os.Stderr, "mongostandin: waiting for connections on %s (auth %v, dbPath %s)\n", addr, auth, c.Storage.DBPath)
	l.Run(ctx)
	fmt.Fprintln(os.Stderr, "mongostandin: shut down")
	return nil
}

// withoutRoles drops the roles of createUser and updateUser: FerretDB 1.x
// has authentication but no authorization, and refuses any roles. The
// stand-in accepts them, like mongod, and does not enforce them.
func withoutRoles(next func(context.Context, *wire.OpMsg) (*wire.OpMsg, error)) func(context.Context, *wire.OpMsg) (*wire.OpMsg, error) {
	return func(ctx context.Context, msg *wire.OpMsg) (*wire.OpMsg, error) {
		raw, err := msg.RawDocument()
		if err != nil {
			return nil, err
		}
		doc, err := raw.Decode()
		if err != nil {
			return nil, err
		}
		if doc.Get("roles") != nil {
			if err := doc.Replace("roles", wirebson.MakeArray(0)); err != nil {
				return nil, err
			}
		}
		stripped, err := wire.NewOpMsg(doc)
		if err != nil {
			return nil, err
		}
		return next(ctx, stripped)
	}
}

// localhostException wraps createUser so that it runs without a login
// until the first user is made, as mongod allows clients on localhost (the
// stand-in listens on loopback in the tests). A marker file in dbPath
// records that the first user exists.
func localhostException(checked, unchecked func(context.Context, *wire.OpMsg) (*wire.OpMsg, error), dbPath string) func(context.Context, *wire.OpMsg) (*wire.OpMsg, error) {
	marker := filepath.Join(dbPath, "jecloud-standin-first-user")
	var mu sync.Mutex
	return func(ctx context.Context, msg *wire.OpMsg) (*wire.OpMsg, error) {
		mu.Lock()
		defer mu.Unlock()
		if _, err := os.Stat(marker); err == nil {
			return checked(ctx, msg)
		}
		res, err := unchecked(ctx, msg)
		if err == nil {
			if werr := os.WriteFile(marker, []byte("the localhost exception is closed\n"), 0o600); werr != nil {
				return nil, werr
			}
		}
		return res, err
	}
}
