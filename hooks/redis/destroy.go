package redis

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jecloud/jecloud/hooks/internal/builtin"
	"github.com/jecloud/jecloud/internal/sysd"
)

// Destroy stops and removes the app environment's Redis and its backup
// timer, and its configuration; its data (the data directory, and the
// password the data was written under) only with e.Req.Data. Backups on
// S3 are never removed here.
func (h *Hook) Destroy(ctx context.Context, e builtin.Env) error {
	req := e.Req
	// The unit, and the backups' service and timer (backuptimer.Names).
	for _, u := range []string{"redis.service", "redis-backup.*"} {
		if _, err := sysd.RemoveAppUnits(ctx, h.UnitDir, req.App, req.Env, u, e.Log); err != nil {
			return err
		}
	}
	i := instance{app: req.App, env: req.Env, dir: req.AppDir}
	_, err := os.Stat(i.dataDir())
	had := err == nil
	remove := []string{i.confPath()}
	if req.Data {
		remove = append(remove, i.dataDir(), filepath.Join(i.dir, "redis.password"))
	}
	for _, p := range remove {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	switch {
	case !had:
	case req.Data:
		fmt.Fprintf(e.Log, "Redis of %s/%s removed with its data\n", req.App, req.Env)
	default:
		fmt.Fprintf(e.Log, "Redis of %s/%s removed; its data stays in %s (--data removes it)\n", req.App, req.Env, i.dataDir())
	}
	return nil
}
