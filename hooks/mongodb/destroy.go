package mongodb

import (
	"context"
	"fmt"
	"os"

	"github.com/jecloud/jecloud/hooks/internal/builtin"
	"github.com/jecloud/jecloud/internal/sysd"
)

// Destroy stops and removes the app environment's MongoDB and its backup
// timer, and its configuration; its data (the data directory, and the
// password the data was written under) only with e.Req.Data. Backups on
// S3 are never removed here.
func (h *Hook) Destroy(ctx context.Context, e builtin.Env) error {
	req := e.Req
	// The unit, and the backups' service and timer (backuptimer.Names).
	for _, u := range []string{"mongodb.service", "mongodb-backup.*"} {
		if _, err := sysd.RemoveAppUnits(ctx, h.UnitDir, req.App, req.Env, u, e.Log); err != nil {
			return err
		}
	}
	i := instance{app: req.App, env: req.Env, dir: req.AppDir}
	_, err := os.Stat(i.dataDir())
	had := err == nil
	remove := []string{i.confPath()}
	if req.Data {
		// The passwords go with the data: the users they log in as are in it.
		remove = append(remove, i.dataDir(), i.adminPasswordFile(), i.appPasswordFile())
	}
	for _, p := range remove {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	switch {
	case !had:
	case req.Data:
		fmt.Fprintf(e.Log, "MongoDB of %s/%s removed with its data\n", req.App, req.Env)
	default:
		fmt.Fprintf(e.Log, "MongoDB of %s/%s removed; its data stays in %s (--data removes it)\n", req.App, req.Env, i.dataDir())
	}
	return nil
}
