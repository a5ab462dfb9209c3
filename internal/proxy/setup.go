package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/jecloud/jecloud/internal/sysd"
	"github.com/jecloud/jecloud/systemd"
)

// CaddyBin is where Debian's caddy package puts the proxy.
const CaddyBin = "/usr/bin/caddy"

// debianUnit is the caddy package's own service (a Caddyfile on port 80):
// the front door replaces it.
const debianUnit = "caddy.service"

// Setup installs the front door on a server under systemd (`jeagent init`):
// Debian's caddy package when it is missing, the proxy's folder and a first
// configuration rendered from the state, jecloud-proxy.service in unitDir,
// enabled and started (restarted when its file changed), and Debian's own
// caddy.service stopped and disabled. Idempotent.
func Setup(ctx context.Context, l state.Layout, unitDir string, log io.Writer) error {
	if _, err := os.Stat(CaddyBin); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(log, "installing the front door: apt-get install caddy\n")
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-q", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=120", "caddy")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("install the front door (apt-get install caddy): %w\n%s\ninstall Debian's caddy package, then run jeagent init again", err, lastLines(out, 5))
		}
	}
	if err := os.MkdirAll(routes.Dir(l), 0o755); err != nil {
		return err
	}
	// The proxy starts from the last configuration it accepted; the first
	// time, from what the state says now.
	if _, err := os.Stat(routes.AppliedFile(l)); errors.Is(err, os.ErrNotExist) {
		in, err := routes.Read(l)
		if err != nil {
			return err
		}
		cfg, _ := routes.Render(in)
		if err := atomicfile.WriteFile(routes.AppliedFile(l), cfg, 0o644); err != nil {
			return err
		}
	}
	b, closeFn, err := sysd.Open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	if ls, err := b.Property(ctx, debianUnit, "LoadState"); err == nil && ls == "loaded" {
		if st, _, err := b.State(ctx, debianUnit); err == nil && st != "inactive" {
			fmt.Fprintf(log, "stopping Debian's %s (%s): the front door takes ports 80 and 443\n", debianUnit, st)
		}
		if err := b.Disable(ctx, []string{debianUnit}); err != nil {
			return fmt.Errorf("disable Debian's %s: %w", debianUnit, err)
		}
		if err := b.Stop(ctx, debianUnit); err != nil {
			return fmt.Errorf("stop Debian's %s: %w", debianUnit, err)
		}
	}
	u := systemd.ProxyUnit()
	if err := sysd.Up(ctx, unitDir, u.Name, string(u.Content), false); err != nil {
		return fmt.Errorf("start the front door: %w\n%s", err, journalTail(Unit))
	}
	fmt.Fprintf(log, "front door: %s running (ports 80 and 443; admin socket %s)\n", Unit, routes.AdminSocket)
	return nil
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
