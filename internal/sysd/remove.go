package sysd

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ResetFailed forgets a failed unit's state, so that a unit whose file is
// gone leaves `systemctl list-units` at once.
func (b *Bus) ResetFailed(ctx context.Context, name string) error {
	return b.conn.ResetFailedUnitContext(ctx, name)
}

// RemoveAppUnits stops, disables and removes the units of app/env in dir
// whose names are AppPrefix(app, env)+pattern ("*": every one of them,
// "redis.service": one): the loaded ones (template instances, transient
// units) and the files, with their .wants links, then reloads systemd. It
// reports how many units it stopped or removed. Nothing found is no
// error: destroying an app environment runs it again after a crash.
func RemoveAppUnits(ctx context.Context, dir, app, env, pattern string, log io.Writer) (int, error) {
	glob := AppPrefix(app, env) + pattern
	files, err := filepath.Glob(filepath.Join(dir, glob))
	if err != nil {
		return 0, err
	}
	sd, closeFn, err := Open(ctx)
	if err != nil {
		return 0, err
	}
	defer closeFn()
	loaded, err := sd.Units(ctx, []string{glob})
	if err != nil {
		return 0, err
	}
	for _, n := range loaded {
		fmt.Fprintf(log, "stopping %s\n", n)
		if err := sd.Stop(ctx, n); err != nil {
			return 0, fmt.Errorf("stop %s: %w", n, err)
		}
		sd.Disable(ctx, []string{n}) // a unit never enabled is no error
	}
	for _, f := range files {
		sd.Disable(ctx, []string{filepath.Base(f)})
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			return 0, err
		}
	}
	wants, _ := filepath.Glob(filepath.Join(dir, "*.wants", glob))
	for _, w := range wants {
		if err := os.Remove(w); err != nil && !os.IsNotExist(err) {
			return 0, err
		}
	}
	if len(files)+len(wants) > 0 {
		if err := sd.Reload(ctx); err != nil {
			return 0, fmt.Errorf("systemctl daemon-reload: %w", err)
		}
	}
	for _, n := range loaded {
		sd.ResetFailed(ctx, n) // not failed: nothing to forget
	}
	if len(files) > 0 {
		names := make([]string, len(files))
		for i, f := range files {
			names[i] = filepath.Base(f)
		}
		fmt.Fprintf(log, "removed unit file(s) %s\n", strings.Join(names, ", "))
	}
	seen := map[string]bool{}
	for _, n := range loaded {
		seen[n] = true
	}
	for _, f := range files {
		seen[filepath.Base(f)] = true
	}
	return len(seen), nil
}
