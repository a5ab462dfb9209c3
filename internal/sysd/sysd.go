// Package sysd is JeCloud's one wrapper of systemd's D-Bus API
// (github.com/coreos/go-systemd/v22/dbus; bus.go), for the agent and the
// service hooks alike. It installs jeagent's systemd units on a server and
// turns the timer on, the way `systemctl daemon-reload; systemctl enable
// --now TIMER` would, but only doing what is not done yet: a second run
// changes nothing and says so. It also bounds the journal with a journald
// drop-in (journald.go), lists an app environment's units (ps.go), and
// gives the service hooks their unit files and jobs (bus.go).
package sysd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/systemd"
)

// UnitDir is where units written by the administrator (and by `jeagent
// init` and the service hooks) live; it wins over units shipped by
// packages in /lib/systemd/system.
const UnitDir = "/etc/systemd/system"

// PackageUnitDir is where the jeagent package puts its units.
const PackageUnitDir = "/lib/systemd/system"

// Installed reports whether dir holds exactly these units (the package
// installed them): `jeagent init` then writes no copies of its own.
func Installed(dir string, units []systemd.Unit) bool {
	for _, u := range units {
		b, err := os.ReadFile(filepath.Join(dir, u.Name))
		if err != nil || !bytes.Equal(b, u.Content) {
			return false
		}
	}
	return true
}

// Result says what Setup did.
type Result struct {
	Written  []string // unit files written (new or changed)
	Reloaded bool     // daemon-reload
	Enabled  bool     // the timer was enabled
	Started  bool     // the timer was started or restarted
	Notes    []string // things left alone, and why
}

// Changed reports whether Setup changed anything.
func (r Result) Changed() bool {
	return len(r.Written) > 0 || r.Reloaded || r.Enabled || r.Started
}

// String describes the result in one line per change.
func (r Result) String() string {
	var lines []string
	for _, w := range r.Written {
		lines = append(lines, "systemd: wrote "+w)
	}
	if r.Reloaded {
		lines = append(lines, "systemd: reloaded the unit files (daemon-reload)")
	}
	if r.Enabled {
		lines = append(lines, "systemd: enabled "+systemd.Timer)
	}
	if r.Started {
		lines = append(lines, "systemd: started "+systemd.Timer)
	}
	for _, n := range r.Notes {
		lines = append(lines, "systemd: "+n)
	}
	if !r.Changed() {
		lines = append(lines, fmt.Sprintf("systemd: %s and %s up to date, timer enabled and active: nothing to do",
			systemd.Service, systemd.Timer))
	}
	return strings.Join(lines, "\n")
}

// WriteUnits writes each unit into dir, atomically, unless the file already
// has that content. It returns the paths it wrote.
func WriteUnits(dir string, units []systemd.Unit) ([]string, error) {
	var written []string
	for _, u := range units {
		p := filepath.Join(dir, u.Name)
		old, err := os.ReadFile(p)
		if err == nil && bytes.Equal(old, u.Content) {
			continue
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return written, fmt.Errorf("read %s: %w", p, err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return written, err
		}
		if err := atomicfile.WriteFile(p, u.Content, 0o644); err != nil {
			return written, fmt.Errorf("write %s: %w", p, err)
		}
		written = append(written, p)
	}
	return written, nil
}

// dialInit is Dial for `jeagent init`: its error says how to do without.
func dialInit(ctx context.Context) (*Bus, error) {
	b, err := Dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w (run as root; `jeagent init --no-systemd` skips this)", err)
	}
	return b, nil
}

// Setup writes units into dir, then, over the system bus: reloads systemd
// if a unit changed (or systemd says it needs a reload), enables timer
// unless it is enabled, and starts it unless it is active (restarts it when
// its file changed, so new settings apply). A masked timer is left alone.
func Setup(ctx context.Context, dir string, units []systemd.Unit, timer string) (Result, error) {
	var r Result
	written, err := WriteUnits(dir, units)
	r.Written = written
	if err != nil {
		return r, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	b, err := dialInit(ctx)
	if err != nil {
		return r, err
	}
	defer b.Close()

	if r.Reloaded, err = reloadIfNeeded(ctx, b, units, len(written) > 0); err != nil {
		return r, err
	}
	enabled, masked, err := enableTimer(ctx, b, timer)
	if err != nil {
		return r, err
	}
	if masked {
		r.Notes = append(r.Notes, timer+" is masked: left alone (systemctl unmask "+timer+", then jeagent init)")
		return r, nil
	}
	if enabled {
		r.Enabled, r.Reloaded = true, true
	}
	r.Started, err = startTimer(ctx, b, timer, wrote(written, timer))
	return r, err
}

// property returns the value of a unit's D-Bus property.
func property(ctx context.Context, b *Bus, unit, name string) (any, error) {
	v, err := b.Property(ctx, unit, name)
	if err != nil {
		return nil, fmt.Errorf("systemd: property %s of %s: %w", name, unit, err)
	}
	return v, nil
}

// reloadIfNeeded runs daemon-reload if a unit file was written, or else if
// systemd says one of units needs it (NeedDaemonReload), and reports
// whether it did.
func reloadIfNeeded(ctx context.Context, b *Bus, units []systemd.Unit, written bool) (bool, error) {
	reload := written
	if !reload {
		for _, u := range units {
			v, err := property(ctx, b, u.Name, "NeedDaemonReload")
			if err != nil {
				return false, err
			}
			if b, _ := v.(bool); b {
				reload = true
			}
		}
	}
	if !reload {
		return false, nil
	}
	if err := b.Reload(ctx); err != nil {
		return false, fmt.Errorf("systemd: daemon-reload: %w", err)
	}
	return true, nil
}

// enableTimer enables timer unless its UnitFileState says it is enabled
// already (or needs no enabling: static, generated...), then runs
// daemon-reload as `systemctl enable` does. It reports whether it enabled
// (and reloaded), and whether the timer is masked: then it does nothing.
func enableTimer(ctx context.Context, b *Bus, timer string) (enabled, masked bool, err error) {
	v, err := property(ctx, b, timer, "UnitFileState")
	if err != nil {
		return false, false, err
	}
	switch state, _ := v.(string); state {
	case "enabled", "enabled-runtime", "linked", "linked-runtime", "alias", "static", "indirect", "generated", "transient":
		return false, false, nil
	case "masked", "masked-runtime":
		return false, true, nil
	}
	if err := b.Enable(ctx, []string{timer}); err != nil {
		return false, false, fmt.Errorf("systemd: enable %s: %w", timer, err)
	}
	// As `systemctl enable` does: load the new [Install] symlinks.
	if err := b.Reload(ctx); err != nil {
		return false, false, fmt.Errorf("systemd: daemon-reload: %w", err)
	}
	return true, false, nil
}

// wrote reports whether one of the paths written is the unit name's file.
func wrote(written []string, name string) bool {
	for _, w := range written {
		if filepath.Base(w) == name {
			return true
		}
	}
	return false
}

// startTimer starts timer unless it is active, restarts it if it is active
// but its file was just written (so new settings apply), waits for the
// job's result and reports whether it started or restarted it.
func startTimer(ctx context.Context, b *Bus, timer string, timerWritten bool) (bool, error) {
	v, err := property(ctx, b, timer, "ActiveState")
	if err != nil {
		return false, err
	}
	active := v == "active"
	if active && !timerWritten {
		return false, nil
	}
	start := jobFunc(b.conn.StartUnitContext)
	if active {
		start = b.conn.RestartUnitContext
	}
	ch, err := queue(ctx, timer, start)
	if err != nil {
		return false, fmt.Errorf("systemd: start %s: %w", timer, err)
	}
	res, err := result(ctx, ch)
	if err != nil {
		return false, fmt.Errorf("systemd: start %s: %w", timer, err)
	}
	if res != "done" {
		return false, fmt.Errorf("systemd: start %s: %s (see: journalctl -u %s)", timer, res, timer)
	}
	return true, nil
}
