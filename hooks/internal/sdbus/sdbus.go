// Package sdbus is what the built-in hooks ask of systemd, over D-Bus
// (go-systemd's dbus package): reload, enable, start, restart, stop, and
// a unit's state.
package sdbus

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/coreos/go-systemd/v22/unit"
	"github.com/jecloud/jecloud/internal/atomicfile"
)

// Systemd is what a hook asks of the service manager; Bus implements it
// (tests may give another).
type Systemd interface {
	Reload(ctx context.Context) error
	Enable(ctx context.Context, names []string) error
	Disable(ctx context.Context, names []string) error
	Start(ctx context.Context, name string) error
	Restart(ctx context.Context, name string) error
	Stop(ctx context.Context, name string) error
	// State returns the unit's ActiveState and its service's NRestarts.
	State(ctx context.Context, name string) (active string, restarts uint32, err error)
	// Units lists the loaded units whose names match the patterns.
	Units(ctx context.Context, patterns []string) ([]string, error)
}

// Bus drives systemd over D-Bus.
type Bus struct{ conn *dbus.Conn }

// Dial connects to the system's systemd.
func Dial(ctx context.Context) (*Bus, error) {
	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to systemd over D-Bus: %w (JeCloud's service hooks need systemd)", err)
	}
	return &Bus{conn}, nil
}

func (b *Bus) Close() { b.conn.Close() }

func (b *Bus) Reload(ctx context.Context) error { return b.conn.ReloadContext(ctx) }

func (b *Bus) Enable(ctx context.Context, names []string) error {
	_, _, err := b.conn.EnableUnitFilesContext(ctx, names, false, true)
	return err
}

func (b *Bus) Disable(ctx context.Context, names []string) error {
	_, err := b.conn.DisableUnitFilesContext(ctx, names, false)
	return err
}

// job runs a unit job and waits for its result.
func (b *Bus) job(ctx context.Context, what, name string, fn func(context.Context, string, string, chan<- string) (int, error)) error {
	ch := make(chan string, 1)
	if _, err := fn(ctx, name, "replace", ch); err != nil {
		return fmt.Errorf("%s %s: %w", what, name, err)
	}
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("%s %s: %s (see journalctl -u %s)", what, name, res, name)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *Bus) Start(ctx context.Context, name string) error {
	return b.job(ctx, "start", name, b.conn.StartUnitContext)
}
func (b *Bus) Restart(ctx context.Context, name string) error {
	return b.job(ctx, "restart", name, b.conn.RestartUnitContext)
}
func (b *Bus) Stop(ctx context.Context, name string) error {
	return b.job(ctx, "stop", name, b.conn.StopUnitContext)
}

func (b *Bus) State(ctx context.Context, name string) (string, uint32, error) {
	p, err := b.conn.GetUnitPropertyContext(ctx, name, "ActiveState")
	if err != nil {
		return "", 0, err
	}
	active, _ := p.Value.Value().(string)
	var restarts uint32
	if r, err := b.conn.GetServicePropertyContext(ctx, name, "NRestarts"); err == nil {
		restarts, _ = r.Value.Value().(uint32)
	}
	return active, restarts, nil
}

func (b *Bus) Units(ctx context.Context, patterns []string) ([]string, error) {
	list, err := b.conn.ListUnitsByPatternsContext(ctx, nil, patterns)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, u := range list {
		out = append(out, u.Name)
	}
	return out, nil
}

// WriteUnit writes a unit file into dir unless it already holds content,
// and reports whether it changed (a daemon-reload is then due).
func WriteUnit(dir, name, content string) (bool, error) {
	p := filepath.Join(dir, name)
	if old, err := os.ReadFile(p); err == nil && string(old) == content {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	return true, atomicfile.WriteFile(p, []byte(content), 0o644)
}

// Serialize renders unit options as a unit file with a header saying who wrote it.
func Serialize(opts []*unit.UnitOption) string {
	b, _ := io.ReadAll(unit.Serialize(opts))
	return "# Written by jeagent on each deploy: edits are lost.\n" + string(b)
}

// Opt is one line of a unit file.
func Opt(section, name, value string) *unit.UnitOption {
	return &unit.UnitOption{Section: section, Name: name, Value: value}
}

// UnitDir is where the hooks write their unit files.
const UnitDir = "/etc/systemd/system"

// Open connects to systemd and returns it with the function that closes it.
func Open(ctx context.Context) (Systemd, func(), error) {
	b, err := Dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	return b, b.Close, nil
}

// OpenReloaded is Open, then a daemon-reload if unit files changed.
func OpenReloaded(ctx context.Context, changed bool) (Systemd, func(), error) {
	sd, closeFn, err := Open(ctx)
	if err != nil || !changed {
		return sd, closeFn, err
	}
	if err := sd.Reload(ctx); err != nil {
		closeFn()
		return nil, nil, fmt.Errorf("systemctl daemon-reload: %w", err)
	}
	return sd, closeFn, nil
}

// Sandbox is the confinement of every process JeCloud runs for an app: the
// system read-only but for the writable paths, no home directories, its
// own /tmp, no devices, no new privileges, no kernel tuning.
func Sandbox(writable ...string) []*unit.UnitOption {
	s := func(name, value string) *unit.UnitOption { return Opt("Service", name, value) }
	return []*unit.UnitOption{
		s("NoNewPrivileges", "yes"),
		s("ProtectSystem", "strict"),
		s("ProtectHome", "yes"),
		s("PrivateTmp", "yes"),
		s("PrivateDevices", "yes"),
		s("ProtectKernelTunables", "yes"),
		s("ProtectKernelModules", "yes"),
		s("ProtectControlGroups", "yes"),
		s("ProtectKernelLogs", "yes"),
		s("ProtectClock", "yes"),
		s("ProtectHostname", "yes"),
		s("ProtectProc", "invisible"),
		s("RestrictSUIDSGID", "yes"),
		s("RestrictNamespaces", "yes"),
		s("RestrictRealtime", "yes"),
		s("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
		s("LockPersonality", "yes"),
		s("RemoveIPC", "yes"),
		s("CapabilityBoundingSet", ""),
		s("AmbientCapabilities", ""),
		s("SystemCallArchitectures", "native"),
		s("SystemCallFilter", "@system-service"),
		s("SystemCallFilter", "~@privileged"),
		// A refused call fails with EPERM instead of killing the process:
		// Node.js's libuv tries io_uring and falls back when it is refused.
		s("SystemCallErrorNumber", "EPERM"),
		s("ReadWritePaths", strings.Join(writable, " ")),
	}
}
