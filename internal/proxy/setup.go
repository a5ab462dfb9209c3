package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/jecloud/jecloud/internal/sysd"
	"github.com/jecloud/jecloud/systemd"
)

// Where Debian's packages put the front door's programs.
const (
	CaddyBin   = "/usr/bin/caddy"
	HAProxyBin = "/usr/sbin/haproxy"
)

// debianUnits are the packages' own services (a Caddyfile on port 80, an
// empty HAProxy): the front door replaces them.
var debianUnits = []string{"caddy.service", "haproxy.service"}

// Setup installs the front door on a server under systemd (`jeagent init`):
// Debian's caddy and haproxy packages when they are missing, the front
// door's folder and its configuration rendered from the state, Debian's
// own caddy.service and haproxy.service stopped and disabled, then
// jecloud-proxy.service (Caddy) and jecloud-haproxy.service in unitDir,
// enabled and started (restarted when their file changed). A Caddy that
// ran the front door before HAProxy did (on ports 80 and 443) is given its
// configuration behind HAProxy first. Idempotent.
func Setup(ctx context.Context, l state.Layout, unitDir string, log io.Writer) error {
	var missing []string
	for pkg, bin := range map[string]string{"caddy": CaddyBin, "haproxy": HAProxyBin} {
		if _, err := os.Stat(bin); errors.Is(err, os.ErrNotExist) {
			missing = append(missing, pkg)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		fmt.Fprintf(log, "installing the front door: apt-get install %s\n", strings.Join(missing, " "))
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-q", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=120"}, missing...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("install the front door (apt-get install %s): %w\n%s\ninstall Debian's caddy and haproxy packages, then run jeagent init again", strings.Join(missing, " "), err, lastLines(out, 5))
		}
	}
	if err := os.MkdirAll(routes.Dir(l), 0o755); err != nil {
		return err
	}
	// Both start from the files: what the state says now.
	in, err := routes.Read(l)
	if err != nil {
		return err
	}
	cfg, _ := routes.Render(in)
	if err := Default.check(ctx, routes.HAProxyFile(l), cfg.HAProxy); err != nil {
		return fmt.Errorf("the front door's configuration: %w", err)
	}
	if err := atomicfile.WriteFile(routes.AppliedFile(l), cfg.Caddy, 0o644); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(routes.HAProxyFile(l), cfg.HAProxy, 0o644); err != nil {
		return err
	}
	b, closeFn, err := sysd.Open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	for _, unit := range debianUnits {
		if ls, err := b.Property(ctx, unit, "LoadState"); err == nil && ls == "loaded" {
			if st, _, err := b.State(ctx, unit); err == nil && st != "inactive" {
				fmt.Fprintf(log, "stopping Debian's %s (%s): the front door takes ports 80 and 443\n", unit, st)
			}
			if err := b.Disable(ctx, []string{unit}); err != nil {
				return fmt.Errorf("disable Debian's %s: %w", unit, err)
			}
			if err := b.Stop(ctx, unit); err != nil {
				return fmt.Errorf("stop Debian's %s: %w", unit, err)
			}
		}
	}
	u := systemd.ProxyUnit()
	if err := sysd.Up(ctx, unitDir, u.Name, string(u.Content), false); err != nil {
		return fmt.Errorf("start the front door: %w\n%s", err, journalTail(Unit))
	}
	// A Caddy that was running keeps the configuration it had (on ports
	// 80 and 443, before HAProxy): load the file's.
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := waitLoad(lctx, cfg.Caddy); err != nil {
		return fmt.Errorf("start the front door: %w\n%s", err, journalTail(Unit))
	}
	h := systemd.HAProxyUnit()
	if err := sysd.Up(ctx, unitDir, h.Name, string(h.Content), false); err != nil {
		return fmt.Errorf("start the front door: %w\n%s", err, journalTail(HAProxyUnit))
	}
	if err := Default.HAProxy.Reload(lctx); err != nil {
		return fmt.Errorf("start the front door: %w\n%s", err, journalTail(HAProxyUnit))
	}
	fmt.Fprintf(log, "front door: %s (HAProxy, ports 80 and 443) and %s (Caddy, certificates and pages, %s) running\n", HAProxyUnit, Unit, routes.BackendAddr)
	return nil
}

// waitLoad loads cfg into Caddy once its admin socket answers (it has
// just been started, or was running).
func waitLoad(ctx context.Context, cfg []byte) error {
	for {
		err := Default.Load(ctx, cfg)
		if !errors.Is(err, ErrNotRunning) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func journalTail(unit string) string {
	out, _ := exec.Command("journalctl", "-u", unit, "-n", "15", "--no-pager", "-o", "cat").CombinedOutput()
	return string(out)
}

func lastLines(b []byte, n int) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return bytes.Join(lines, []byte("\n"))
}
