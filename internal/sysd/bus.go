package sysd

// What JeCloud asks of systemd over D-Bus (go-systemd's dbus package), for
// `jeagent init` and for the service hooks: reload, enable, start,
// restart, stop, a unit's state; and the unit files the hooks write.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/dbus"
	"github.com/coreos/go-systemd/v22/unit"
	"github.com/jecloud/jecloud/internal/atomicfile"
)

// Bus drives systemd over D-Bus.
type Bus struct{ conn *dbus.Conn }

// Dial connects to the system's systemd over the system bus.
func Dial(ctx context.Context) (*Bus, error) {
	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to systemd over D-Bus: %w", err)
	}
	return &Bus{conn}, nil
}

// Close closes the connection.
func (b *Bus) Close() { b.conn.Close() }

// Reload has systemd read its unit files again (systemctl daemon-reload).
func (b *Bus) Reload(ctx context.Context) error { return b.conn.ReloadContext(ctx) }

// Enable enables the unit files names for good (not under /run),
// replacing links that point elsewhere (systemctl enable --force).
func (b *Bus) Enable(ctx context.Context, names []string) error {
	_, _, err := b.conn.EnableUnitFilesContext(ctx, names, false, true)
	return err
}

// Disable removes the links that enable the unit files names
// (systemctl disable).
func (b *Bus) Disable(ctx context.Context, names []string) error {
	_, err := b.conn.DisableUnitFilesContext(ctx, names, false)
	return err
}

// jobFunc queues a unit job (go-systemd's StartUnitContext and the like).
type jobFunc func(ctx context.Context, name, mode string, ch chan<- string) (int, error)

// queue queues a unit job on name (mode "replace"); its result comes on
// the channel returned.
func queue(ctx context.Context, name string, fn jobFunc) (<-chan string, error) {
	ch := make(chan string, 1)
	if _, err := fn(ctx, name, "replace", ch); err != nil {
		return nil, err
	}
	return ch, nil
}

// result waits for a queued job's result: "done", or what went wrong
// ("failed", "timeout", ...).
func result(ctx context.Context, ch <-chan string) (string, error) {
	select {
	case res := <-ch:
		return res, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// wait runs a unit job and fails unless it is done.
func (b *Bus) wait(ctx context.Context, what, name string, fn jobFunc) error {
	ch, err := queue(ctx, name, fn)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, name, err)
	}
	res, err := result(ctx, ch)
	if err != nil {
		return err
	}
	if res != "done" {
		return fmt.Errorf("%s %s: %s (see journalctl -u %s)", what, name, res, name)
	}
	return nil
}

// Start starts name and waits for its job: an error unless it is done.
func (b *Bus) Start(ctx context.Context, name string) error {
	return b.wait(ctx, "start", name, b.conn.StartUnitContext)
}

// Restart restarts name and waits for its job: an error unless it is done.
func (b *Bus) Restart(ctx context.Context, name string) error {
	return b.wait(ctx, "restart", name, b.conn.RestartUnitContext)
}

// Stop stops name and waits for its job: an error unless it is done.
func (b *Bus) Stop(ctx context.Context, name string) error {
	return b.wait(ctx, "stop", name, b.conn.StopUnitContext)
}

// Property returns the value of a unit's property (ActiveState, ...).
func (b *Bus) Property(ctx context.Context, unit, name string) (any, error) {
	p, err := b.conn.GetUnitPropertyContext(ctx, unit, name)
	if err != nil {
		return nil, err
	}
	return p.Value.Value(), nil
}

// State returns the unit's ActiveState and its service's NRestarts.
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

// Units lists the loaded units whose names match the patterns.
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

// Open connects to systemd for a service hook and returns it with the
// function that closes it.
func Open(ctx context.Context) (*Bus, func(), error) {
	b, err := Dial(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (JeCloud's service hooks need systemd)", err)
	}
	return b, b.Close, nil
}

// OpenReloaded is Open, then a daemon-reload if unit files changed.
func OpenReloaded(ctx context.Context, changed bool) (*Bus, func(), error) {
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

// Up writes the unit file name into dir (a daemon-reload if it changed),
// enables the unit, and starts it, or restarts it when its file changed or
// restart says its configuration did.
func Up(ctx context.Context, dir, name, content string, restart bool) error {
	changed, err := WriteUnit(dir, name, content)
	if err != nil {
		return err
	}
	b, closeFn, err := OpenReloaded(ctx, changed)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := b.Enable(ctx, []string{name}); err != nil {
		return err
	}
	if changed || restart {
		return b.Restart(ctx, name)
	}
	return b.Start(ctx, name)
}

// MetadataAddrs are the instance metadata service's addresses (EC2's, and
// most clouds' IPv4 one): whoever reaches them gets the server's cloud
// credentials (its IAM role) and its user-data.
const MetadataAddrs = "169.254.169.254 fd00:ec2::254"

// Limits are a unit's resource limits: at most tasks processes and threads
// (TasksMax=), memory throttled above memHigh (MemoryHigh=, "" for none)
// and the unit's processes killed by the kernel above memMax (MemoryMax=),
// and cpuWeight, its share of the CPU when the CPU is short (CPUWeight=,
// 100 by default). Sizes and shares as systemd takes them ("512M", "50%").
func Limits(tasks int, memHigh, memMax string, cpuWeight int) []*unit.UnitOption {
	s := func(name, value string) *unit.UnitOption { return Opt("Service", name, value) }
	o := []*unit.UnitOption{s("TasksMax", strconv.Itoa(tasks))}
	if memHigh != "" {
		o = append(o, s("MemoryHigh", memHigh))
	}
	return append(o, s("MemoryMax", memMax), s("CPUWeight", strconv.Itoa(cpuWeight)))
}

// Sandbox is the confinement of every process JeCloud runs for an app: the
// system read-only but for the writable paths, no home directories, its
// own /tmp, no devices, no new privileges, no kernel tuning, no instance
// metadata service (IPAddressDeny= needs cgroup v2 and BPF; where systemd
// has neither it loads the unit and does not enforce it: docs/node.md).
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
		s("IPAddressDeny", MetadataAddrs),
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
