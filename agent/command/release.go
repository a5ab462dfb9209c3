package command

import (
	"context"
	"io"
	"time"

	"github.com/coreos/go-systemd/v22/util"

	"github.com/jecloud/jecloud/internal/appuser"
	"github.com/jecloud/jecloud/internal/oneoff"
	"github.com/jecloud/jecloud/internal/rollforward"
)

// releaser runs the release commands of deployments (docs/release.md):
// under systemd, as a transient unit with the app's user, created first if
// the release's hooks did not; elsewhere not at all.
func releaser() rollforward.ReleaseFunc {
	if !util.IsRunningSystemd() {
		return nil
	}
	return func(ctx context.Context, p oneoff.Process, command string, timeout time.Duration, log io.Writer) error {
		if _, _, err := appuser.Ensure(p.App, p.Env, p.AppDir, log); err != nil {
			return err
		}
		return oneoff.RunRelease(ctx, p, command, timeout, log)
	}
}
