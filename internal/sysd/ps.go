package sysd

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"
)

// Process is one unit of an app environment, as `jeagent ps` shows it.
type Process struct {
	Unit     string    `json:"unit"`
	Type     string    `json:"type"`     // web, worker, redis, mongodb, ...
	Instance string    `json:"instance"` // "1" of web@1, "" for a single unit
	State    string    `json:"state"`    // active, failed, activating...
	Sub      string    `json:"sub"`      // running, dead, auto-restart...
	PID      uint32    `json:"pid"`
	Restarts uint32    `json:"restarts"` // since the unit was last started by hand or by a deploy
	Since    time.Time `json:"since"`    // when it entered its state
}

// Processes lists the units jecloud-APP_ENV_* that systemd knows (the
// app's process types and its services), and those it still runs under
// their names from before issue #17 (jecloud-APP-ENV-*, described as
// APP/ENV's: DescribesAppEnv), sorted by name.
func Processes(ctx context.Context, app, env string) ([]Process, error) {
	conn, err := dbus.NewWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to systemd: %w", err)
	}
	defer conn.Close()
	prefix, legacy := AppPrefix(app, env), LegacyPrefix(app, env)
	units, err := conn.ListUnitsByPatternsContext(ctx, nil, []string{prefix + "*.service", legacy + "*.service"})
	if err != nil {
		return nil, err
	}
	var ps []Process
	for _, u := range units {
		name, ok := strings.CutPrefix(u.Name, prefix)
		if !ok {
			if !DescribesAppEnv(u.Description, app, env) {
				continue // another app environment's (shop/prod-eu's for shop/prod)
			}
			name = strings.TrimPrefix(u.Name, legacy)
		}
		name = strings.TrimSuffix(name, ".service")
		if strings.HasSuffix(name, "-backup") {
			continue // a backup run, not a process of the app
		}
		typ, inst, _ := strings.Cut(name, "@")
		p := Process{Unit: u.Name, Type: typ, Instance: inst, State: u.ActiveState, Sub: u.SubState}
		if props, err := conn.GetUnitTypePropertiesContext(ctx, u.Name, "Service"); err == nil {
			p.PID, _ = props["MainPID"].(uint32)
			p.Restarts, _ = props["NRestarts"].(uint32)
		}
		if prop, err := conn.GetUnitPropertyContext(ctx, u.Name, "StateChangeTimestamp"); err == nil {
			if us, ok := prop.Value.Value().(uint64); ok && us > 0 {
				p.Since = time.UnixMicro(int64(us)).UTC().Truncate(time.Second)
			}
		}
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Unit < ps[j].Unit })
	return ps, nil
}
