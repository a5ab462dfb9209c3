// Package domains keeps the host names the front door routes to each app
// environment of a server (app.json "domains", docs/routing.md#domains):
// checked with names.CheckHost, and refused when another app environment
// of the server holds them, as one of its domains or as its default name
// under server.json's base domain. Changes go through state.UpdateApp
// under a lock of their own, so that two commands adding the same host to
// two app environments at once cannot both win.
package domains

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/gofrs/flock"

	"github.com/jecloud/jecloud/internal/names"
	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
)

// Holders maps each host name held on the server under l to the app
// environment holding it: its domains, and its default name when
// server.json sets a base domain. An app.json or server.json that does
// not parse is an error naming it (its hosts cannot be known).
func Holders(l state.Layout) (map[string]state.AppEnv, error) {
	var s state.Server
	if err := state.Read(l.ServerJSON(), &s); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cannot check which app holds a host name: %w", err)
	}
	base := ""
	if s.Proxy != nil {
		base = s.Proxy.BaseDomain
	}
	aes, err := l.AppEnvs()
	if err != nil {
		return nil, err
	}
	held := map[string]state.AppEnv{}
	for _, ae := range aes {
		var a state.App
		if err := state.Read(l.AppJSON(ae), &a); err != nil {
			return nil, fmt.Errorf("cannot check which app holds a host name: %w (fix or remove that file)", err)
		}
		for _, h := range a.Domains {
			if _, ok := held[h]; !ok {
				held[h] = ae
			}
		}
		if h := routes.DefaultName(ae, base); h != "" {
			if _, ok := held[h]; !ok {
				held[h] = ae
			}
		}
	}
	return held, nil
}

// ConflictError is a host name that another app environment holds.
type ConflictError struct {
	Host  string
	Owner state.AppEnv
	For   state.AppEnv
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("host name %q is held by %s on this server: remove it there first (`jepush domains:remove %s %s` from that app, or edit %s's app.json), then add it to %s",
		e.Host, e.Owner, e.Owner.Env, e.Host, e.Owner, e.For)
}

// lock serialises changes of domains on the server.
func lock(l state.Layout) (func(), error) {
	if err := os.MkdirAll(l.PIDDir(), 0o755); err != nil {
		return nil, err
	}
	fl := flock.New(filepath.Join(l.PIDDir(), "domains.lock"))
	if err := fl.Lock(); err != nil {
		return nil, fmt.Errorf("lock %s: %w", fl.Path(), err)
	}
	return func() { fl.Unlock() }, nil
}

// Add adds hosts to ae's domains and returns those that were not there
// yet. Nothing is written unless every host is valid and free.
func Add(l state.Layout, ae state.AppEnv, hosts []string) ([]string, error) {
	if len(hosts) == 0 {
		return nil, errors.New("give at least one host name, e.g. www.example.com")
	}
	for _, h := range hosts {
		if err := names.CheckHost(h); err != nil {
			return nil, err
		}
	}
	unlock, err := lock(l)
	if err != nil {
		return nil, err
	}
	defer unlock()
	held, err := Holders(l)
	if err != nil {
		return nil, err
	}
	for _, h := range hosts {
		if o, ok := held[h]; ok && o != ae {
			return nil, &ConflictError{Host: h, Owner: o, For: ae}
		}
	}
	var added []string
	_, err = state.UpdateApp(l.AppJSON(ae), func(a *state.App) error {
		added = nil
		for _, h := range hosts {
			if !slices.Contains(a.Domains, h) && !slices.Contains(added, h) {
				added = append(added, h)
			}
		}
		a.Domains = append(a.Domains, added...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return added, nil
}

// Remove removes host from ae's domains; it reports whether it was there.
func Remove(l state.Layout, ae state.AppEnv, host string) (bool, error) {
	unlock, err := lock(l)
	if err != nil {
		return false, err
	}
	defer unlock()
	found := false
	_, err = state.UpdateApp(l.AppJSON(ae), func(a *state.App) error {
		i := slices.Index(a.Domains, host)
		found = i >= 0
		if found {
			a.Domains = slices.Delete(a.Domains, i, i+1)
		}
		return nil
	})
	return found, err
}

// Set makes ae's domains exactly hosts (the global state's list, on a
// server that follows it), checked like Add. It reports whether app.json
// changed.
func Set(l state.Layout, ae state.AppEnv, hosts []string) (bool, error) {
	for _, h := range hosts {
		if err := names.CheckHost(h); err != nil {
			return false, err
		}
	}
	unlock, err := lock(l)
	if err != nil {
		return false, err
	}
	defer unlock()
	held, err := Holders(l)
	if err != nil {
		return false, err
	}
	for _, h := range hosts {
		if o, ok := held[h]; ok && o != ae {
			return false, &ConflictError{Host: h, Owner: o, For: ae}
		}
	}
	changed := false
	_, err = state.UpdateApp(l.AppJSON(ae), func(a *state.App) error {
		changed = !slices.Equal(a.Domains, hosts)
		if changed {
			a.Domains = slices.Clone(hosts)
			if len(a.Domains) == 0 {
				a.Domains = nil
			}
		}
		return nil
	})
	return changed, err
}

// SetMaintenance turns ae's maintenance mode on or off; it reports
// whether app.json changed.
func SetMaintenance(l state.Layout, ae state.AppEnv, on bool) (bool, error) {
	changed := false
	_, err := state.UpdateApp(l.AppJSON(ae), func(a *state.App) error {
		changed = a.Maintenance != on
		a.Maintenance = on
		return nil
	})
	return changed, err
}
