package mongodb

import (
	"context"

	"github.com/jecloud/jecloud/hooks/internal/builtin"
)

// Destroy stops and removes the app environment's MongoDB and its backup
// timer (backuptimer.Names), and its configuration; its data only with
// e.Req.Data, and the passwords with it (the users they log in as are in
// the data).
func (h *Hook) Destroy(ctx context.Context, e builtin.Env) error {
	i := instance{app: e.Req.App, env: e.Req.Env, dir: e.Req.AppDir}
	return builtin.Service{
		Name:   "MongoDB",
		Units:  []string{"mongodb.service", "mongodb-backup.*"},
		Config: i.confPath(), DataDir: i.dataDir(),
		Secrets: []string{i.adminPasswordFile(), i.appPasswordFile()},
	}.Destroy(ctx, h.UnitDir, e)
}
