package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/jecloud/jecloud/internal/appuser"
	"github.com/jecloud/jecloud/internal/hook"
	"github.com/jecloud/jecloud/internal/ports"
	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/jecloud/jecloud/internal/sysd"
)

// destroy removes what the hook set up for an app environment being
// destroyed: every unit of it (its processes, and the services' units
// that run as its user: the node hook runs first in the destroy phase),
// its static site, its web upstreams, its ports and its user. Each part
// is skipped when it is already gone, so a run stopped half way is
// finished by the next.
func (h *Hook) destroy(ctx context.Context, req hook.Request, log io.Writer) error {
	l := state.Layout{Root: req.Root}
	if h.Active() {
		n, err := sysd.RemoveAppUnits(ctx, h.UnitDir, req.App, req.Env, "*", log)
		if err != nil {
			return err
		}
		fmt.Fprintf(log, "%d unit(s) stopped and removed\n", n)
	}
	for _, p := range []string{
		filepath.Join(routes.StaticDir(l), req.App, req.Env),
		filepath.Join(req.AppDir, routes.UpstreamsFile),
		filepath.Join(req.AppDir, ports.FileName),
	} {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	os.Remove(filepath.Join(routes.StaticDir(l), req.App)) // only if no other env of the app has a site
	if !h.Active() {
		return nil // no systemd: no user was made (install needs it)
	}
	return removeUser(req.App, req.Env, log)
}

// removeUser deletes the app environment's user and group, if it has one
// of its own (its comment names it: appuser.Resolve), after its processes
// have stopped.
func removeUser(app, env string, log io.Writer) error {
	name, err := appuser.Resolve(app, env)
	if err != nil {
		return err // a user of that name that is not its own: left alone, and said so
	}
	if _, err := user.Lookup(name); err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return nil
		}
		return fmt.Errorf("user %s: %w", name, err)
	}
	out, err := exec.Command("userdel", name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("userdel %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	fmt.Fprintf(log, "user %s removed\n", name)
	return nil
}
