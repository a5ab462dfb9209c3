package node

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/jecloud/jecloud/internal/appuser"
	"github.com/jecloud/jecloud/internal/lines"
	"github.com/jecloud/jecloud/internal/oom"
)

// npmInstall installs the release's production dependencies as the app's
// user: `npm ci` from the lockfile, else `npm install`, with the app's own
// npm cache. A failure fails the deployment before the switch.
func npmInstall(ctx context.Context, a *app, nodeBin string, lock bool, log io.Writer) error {
	uid, gid, err := appuser.IDs(a.user)
	if err != nil {
		return err
	}
	if err := chownTree(a.release, uid, gid); err != nil {
		return err
	}
	args := []string{"ci"}
	if !lock {
		args = []string{"install"}
		fmt.Fprintln(log, "no package-lock.json: running npm install (commit a lockfile for repeatable deploys)")
	}
	registry, err := a.settings.npmRegistry()
	if err != nil {
		return err
	}
	args = append(args, "--omit=dev", "--no-audit", "--no-fund", "--no-update-notifier")
	cmd := exec.CommandContext(ctx, filepath.Join(nodeBin, "npm"), args...)
	cmd.Dir = a.release
	home := filepath.Join(a.dir, "home")
	cmd.Env = []string{
		"PATH=" + nodeBin + ":/usr/local/bin:/usr/bin:/bin",
		"HOME=" + home,
		"npm_config_cache=" + filepath.Join(home, ".npm"),
		"NODE_ENV=production",
	}
	if registry != "" {
		// Also for the packages the lockfile resolved elsewhere: npm
		// fetches from the registry it is given when the lockfile's
		// URLs point at npm's default one.
		cmd.Env = append(cmd.Env, "npm_config_registry="+registry)
		fmt.Fprintf(log, "npm registry: %s (server.json node.npm_registry)\n", registry)
	}
	out := lines.Prefixed(log, "")
	cmd.Stdout, cmd.Stderr = out, out
	asUser(cmd, uid, gid)
	fmt.Fprintf(log, "npm %v (as %s)\n", args, a.user)
	err = oom.Run(cmd) // npm is not protected from the OOM killer with the agent
	out.Flush()
	if err != nil {
		return fmt.Errorf("npm %s failed (%v): %s", args[0], err, strings.TrimSpace(out.Last()))
	}
	return nil
}
