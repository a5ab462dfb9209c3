package node

import (
	"context"
	"fmt"

	"github.com/coreos/go-systemd/v22/dbus"
)

// systemd is what the hook asks of the service manager.
type systemd interface {
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

// bus drives systemd over D-Bus (go-systemd's dbus package).
type bus struct{ conn *dbus.Conn }

func dialSystemd(ctx context.Context) (*bus, error) {
	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to systemd over D-Bus: %w (the node hook needs systemd)", err)
	}
	return &bus{conn}, nil
}

func (b *bus) Close() { b.conn.Close() }

func (b *bus) Reload(ctx context.Context) error { return b.conn.ReloadContext(ctx) }

func (b *bus) Enable(ctx context.Context, names []string) error {
	_, _, err := b.conn.EnableUnitFilesContext(ctx, names, false, true)
	return err
}

func (b *bus) Disable(ctx context.Context, names []string) error {
	_, err := b.conn.DisableUnitFilesContext(ctx, names, false)
	return err
}

// job runs a unit job and waits for its result.
func (b *bus) job(ctx context.Context, what, name string, fn func(context.Context, string, string, chan<- string) (int, error)) error {
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

func (b *bus) Start(ctx context.Context, name string) error {
	return b.job(ctx, "start", name, b.conn.StartUnitContext)
}
func (b *bus) Restart(ctx context.Context, name string) error {
	return b.job(ctx, "restart", name, b.conn.RestartUnitContext)
}
func (b *bus) Stop(ctx context.Context, name string) error {
	return b.job(ctx, "stop", name, b.conn.StopUnitContext)
}

func (b *bus) State(ctx context.Context, name string) (string, uint32, error) {
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

func (b *bus) Units(ctx context.Context, patterns []string) ([]string, error) {
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
