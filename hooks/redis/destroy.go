package redis

import (
	"context"
	"path/filepath"

	"github.com/jecloud/jecloud/hooks/internal/builtin"
)

// Destroy stops and removes the app environment's Redis and its backup
// timer (backuptimer.Names), and its configuration; its data (the data
// directory, and the password the data was written under) only with
// e.Req.Data.
func (h *Hook) Destroy(ctx context.Context, e builtin.Env) error {
	i := instance{app: e.Req.App, env: e.Req.Env, dir: e.Req.AppDir}
	return builtin.Service{
		Name:   "Redis",
		Units:  []string{"redis.service", "redis-backup.*"},
		Config: i.confPath(), DataDir: i.dataDir(),
		Secrets: []string{filepath.Join(i.dir, "redis.password")},
	}.Destroy(ctx, h.UnitDir, e)
}
