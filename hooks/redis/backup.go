package redis

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jecloud/jecloud/internal/backup"
	"github.com/jecloud/jecloud/internal/ports"
	"github.com/jecloud/jecloud/internal/sysd"
)

// facts reads what a backup needs of a set-up instance.
func facts(inst backup.Instance) (instance, error) {
	i := instance{app: inst.App, env: inst.Env, dir: inst.Dir()}
	var err error
	if i.port, err = ports.Lookup(i.dir, "redis"); err != nil {
		return i, err
	}
	b, err := os.ReadFile(filepath.Join(i.dir, "redis.password"))
	if err != nil {
		return i, fmt.Errorf("%w: Redis is not set up for %s/%s", err, inst.App, inst.Env)
	}
	i.password = strings.TrimSpace(string(b))
	return i, nil
}

// Dump writes an RDB snapshot of the instance (redis-cli --rdb, the
// replication protocol: the instance keeps serving) to w.
func (h *Hook) Dump(ctx context.Context, inst backup.Instance, w io.Writer, log io.Writer) error {
	i, err := facts(inst)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(i.dir, ".redis.rdb.tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	cmd := exec.CommandContext(ctx, h.cli(), "-h", "127.0.0.1", "-p", fmt.Sprint(i.port), "--rdb", tmp.Name())
	cmd.Env = append(os.Environ(), "REDISCLI_AUTH="+i.password) // never on the command line
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("redis-cli --rdb: %w: %s", err, strings.TrimSpace(string(out)))
	}
	n, err := io.Copy(w, tmp)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "Redis snapshot: %d bytes (RDB)\n", n)
	return nil
}

func (h *Hook) cli() string { return filepath.Join(filepath.Dir(h.Server), "redis-cli") }

// Restore replaces the instance's data with an RDB snapshot: it stops the
// unit, moves the data directory aside to APP/ENV/redis.before-restore
// (replacing an older one: nothing is lost), makes the snapshot the base
// of a fresh append-only file (Redis 7 loads an RDB base from its AOF
// manifest), starts the unit and waits until it answers.
func (h *Hook) Restore(ctx context.Context, inst backup.Instance, r io.Reader, log io.Writer) error {
	i, err := facts(inst)
	if err != nil {
		return err
	}
	// Under its name from before issue #17 until the next deploy renames it.
	i.unitName = sysd.AppUnit(h.UnitDir, i.app, i.env, "redis.service")
	var st syscall.Stat_t
	if err := syscall.Stat(i.dataDir(), &st); err != nil {
		return err
	}
	// Write the new data first, beside the old.
	fresh := i.dataDir() + ".restoring"
	os.RemoveAll(fresh)
	aof := filepath.Join(fresh, "appendonlydir")
	if err := os.MkdirAll(aof, 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(aof, "appendonly.aof.1.base.rdb"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	f.Close()
	files := map[string]string{
		"appendonly.aof.1.incr.aof": "",
		"appendonly.aof.manifest":   "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(aof, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	for _, p := range []string{fresh, aof, filepath.Join(aof, "appendonly.aof.1.base.rdb"),
		filepath.Join(aof, "appendonly.aof.1.incr.aof"), filepath.Join(aof, "appendonly.aof.manifest")} {
		if err := os.Chown(p, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	stop, start, done, err := h.control(ctx, i)
	if err != nil {
		return err
	}
	defer done()
	if err := stop(); err != nil {
		return fmt.Errorf("stopping %s: %w", i.unit(), err)
	}
	saved := i.dataDir() + ".before-restore"
	if err := os.RemoveAll(saved); err != nil {
		return err
	}
	if err := os.Rename(i.dataDir(), saved); err != nil {
		return err
	}
	if err := os.Rename(fresh, i.dataDir()); err != nil {
		os.Rename(saved, i.dataDir())
		start()
		return err
	}
	fmt.Fprintf(log, "the data it replaces is in %s\n", saved)
	if err := start(); err != nil {
		return fmt.Errorf("starting %s: %w", i.unit(), err)
	}
	if err := ping(ctx, i.port, i.password, 60*time.Second); err != nil {
		return fmt.Errorf("%s does not answer after the restore: %w (the old data is in %s)", i.unit(), err, saved)
	}
	return nil
}

// control returns how to stop and start the instance: its systemd unit,
// unless the hook was given its own (tests without systemd).
func (h *Hook) control(ctx context.Context, i instance) (stop, start func() error, done func(), err error) {
	if h.Stop != nil && h.Start != nil {
		return func() error { return h.Stop(i.unit()) }, func() error { return h.Start(i.unit()) }, func() {}, nil
	}
	sd, closeFn, err := sysd.Open(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	return func() error { return sd.Stop(ctx, i.unit()) }, func() error { return sd.Start(ctx, i.unit()) }, closeFn, nil
}
