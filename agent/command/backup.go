package command

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gofrs/flock"
	"github.com/jecloud/jecloud/internal/backup"
	"github.com/jecloud/jecloud/internal/bytecount"
	"github.com/jecloud/jecloud/internal/rollforward"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/urfave/cli/v2"
)

// backupServices returns the built-in hooks that can back up their
// service, by name (redis, mongodb).
func backupServices() map[string]backup.Service {
	m := map[string]backup.Service{}
	for _, h := range builtins() {
		if s, ok := h.(backup.Service); ok {
			m[h.Name()] = s
		}
	}
	return m
}

func serviceNames() string {
	var names []string
	for n := range backupServices() {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// backupArgs reads APP ENV SERVICE and the backup settings.
func backupArgs(c *cli.Context, min, max int) (backup.Instance, backup.Service, backup.Settings, error) {
	var inst backup.Instance
	ae, err := appEnvArgs(c, min, max)
	if err != nil {
		return inst, nil, backup.Settings{}, err
	}
	l := layout(c)
	inst = backup.Instance{Root: l.Root, App: ae.App, Env: ae.Env, Service: c.Args().Get(2)}
	if _, err := os.Stat(l.AppDir(ae)); err != nil {
		return inst, nil, backup.Settings{}, fmt.Errorf("%s is not on this server (no %s)", ae, l.AppDir(ae))
	}
	var svc backup.Service
	if inst.Service != "" {
		if svc = backupServices()[inst.Service]; svc == nil {
			return inst, nil, backup.Settings{}, fmt.Errorf("%s: no such service to back up: %q (services: %s)", c.Command.Name, inst.Service, serviceNames())
		}
	}
	s, err := backup.ReadSettings(l.Root)
	return inst, svc, s, err
}

// lockInstance keeps two backups or restores of one instance apart.
func lockInstance(inst backup.Instance) (func(), error) {
	path := filepath.Join(inst.Dir(), "."+inst.Service+".backup.lock")
	fl := flock.New(path)
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if !ok {
		return nil, &exitError{2, fmt.Errorf("a backup or restore of %s/%s %s is running (lock %s): try again when it is done", inst.App, inst.Env, inst.Service, path)}
	}
	return func() { fl.Unlock() }, nil
}

func backupCommand() *cli.Command {
	return &cli.Command{
		Name:      "backup",
		Usage:     "back up a service of an app environment to S3 now",
		ArgsUsage: "APP ENV SERVICE",
		Description: "Dumps SERVICE (redis or mongodb) while it keeps serving, compresses it (zstd), uploads it\n" +
			"with its SHA-256 to the bucket of sys/server.json's \"backups\" key, applies the\n" +
			"retention policy and records the result in app.json (shown by `jeagent status`).\n" +
			"The timer jecloud-APP_ENV_SERVICE-backup.timer runs this on the schedule.",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the backup's manifest as JSON"}},
		Action: func(c *cli.Context) error {
			inst, svc, s, err := backupArgs(c, 3, 3)
			if err != nil {
				return err
			}
			unlock, err := lockInstance(inst)
			if err != nil {
				return err
			}
			defer unlock()
			m, err := backup.Backup(c.Context, s, svc, inst, c.App.ErrWriter)
			if err != nil {
				return fmt.Errorf("backup of %s/%s %s: %w", inst.App, inst.Env, inst.Service, err)
			}
			if c.Bool("json") {
				return printJSON(c, m)
			}
			fmt.Fprintf(c.App.Writer, "backed up %s/%s %s: %s (%s, sha256 %s)\n", inst.App, inst.Env, inst.Service, m.Name(), bytecount.Format(m.Size), m.SHA256)
			return nil
		},
	}
}

func restoreCommand() *cli.Command {
	return &cli.Command{
		Name:      "restore",
		Usage:     "replace a service's data with a backup from S3",
		ArgsUsage: "APP ENV SERVICE [BACKUP]",
		Description: "Restores the newest complete backup, or BACKUP (a name from `jeagent backups`).\n" +
			"The backup is downloaded and checked against its size and SHA-256 before anything\n" +
			"is touched. The data it replaces is kept in APP/ENV/SERVICE.before-restore until\n" +
			"the next restore. Waits for a running roll-forward to finish, and holds deploys\n" +
			"back while it runs.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "lock-timeout", Value: 10 * time.Minute, Usage: "how long to wait for a running roll-forward"},
		},
		Action: func(c *cli.Context) error {
			inst, svc, s, err := backupArgs(c, 3, 4)
			if err != nil {
				return err
			}
			unlock, err := lockInstance(inst)
			if err != nil {
				return err
			}
			defer unlock()
			unlockRF, err := waitRollforwardLock(c.Context, layout(c), c.Duration("lock-timeout"), c.App.ErrWriter)
			if err != nil {
				return err
			}
			defer unlockRF()
			m, err := backup.Restore(c.Context, s, svc, inst, c.Args().Get(3), c.App.ErrWriter)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "restored %s/%s %s from %s (%s)\n", inst.App, inst.Env, inst.Service, m.Name(), m.Created.Format(time.RFC3339))
			return nil
		},
	}
}

// waitRollforwardLock takes the roll-forward lock, waiting for a running
// roll-forward, so that no deploy restarts a service being restored.
func waitRollforwardLock(ctx context.Context, l state.Layout, timeout time.Duration, log io.Writer) (func(), error) {
	deadline := time.Now().Add(timeout)
	said := false
	for {
		unlock, ok, holder, err := rollforward.Lock(l)
		if err != nil || ok {
			return unlock, err
		}
		if time.Now().After(deadline) {
			return nil, &exitError{2, fmt.Errorf("a roll-forward (pid %d) still runs after %s: try again later or raise --lock-timeout", holder, timeout)}
		}
		if !said {
			fmt.Fprintf(log, "waiting for the running roll-forward (pid %d) to finish\n", holder)
			said = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func backupsCommand() *cli.Command {
	return &cli.Command{
		Name:        "backups",
		Usage:       "list the backups of an app environment's services in S3",
		ArgsUsage:   "APP ENV [SERVICE]",
		Description: "Lists complete backups, newest first: the names `jeagent restore` takes.",
		Flags:       []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON for scripts"}},
		Action: func(c *cli.Context) error {
			inst, _, s, err := backupArgs(c, 2, 3)
			if err != nil {
				return err
			}
			svcs := []string{inst.Service}
			if inst.Service == "" {
				svcs = nil
				for n := range backupServices() {
					svcs = append(svcs, n)
				}
				sort.Strings(svcs)
			}
			all := []backup.Manifest{}
			for _, name := range svcs {
				inst.Service = name
				ms, err := backup.List(c.Context, s, inst)
				if err != nil {
					return err
				}
				all = append(all, ms...)
			}
			if c.Bool("json") {
				return printJSON(c, map[string]any{"backups": all})
			}
			if len(all) == 0 {
				fmt.Fprintf(c.App.Writer, "no backups of %s/%s in s3://%s/%s/\n", inst.App, inst.Env, s.Bucket, s.Prefix)
			}
			for _, m := range all {
				fmt.Fprintf(c.App.Writer, "%-8s %s  %9s  %s\n", m.Service, m.Name(), bytecount.Format(m.Size), m.Created.Format(time.RFC3339))
			}
			return nil
		},
	}
}

func printJSON(c *cli.Context, v any) error {
	enc := json.NewEncoder(c.App.Writer)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
