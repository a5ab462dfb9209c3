package push

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// ShowConfig prints the config vars of each target (prefixed with the host
// when there are several).
func (c *Client) ShowConfig(ctx context.Context) error {
	return c.runEach(ctx, []string{"config", c.App, c.Env})
}

// SetConfig sets vars on each target and, unless noRestart, restarts the
// app there with them, watching it go live. The values travel on stdin,
// never on a command line where `ps` on the server would show them.
func (c *Client) SetConfig(ctx context.Context, vars map[string]string, noRestart bool) error {
	in, err := json.Marshal(vars)
	if err != nil {
		return err
	}
	return c.eachWatched(ctx, c.configArgv("config:set", nil, noRestart), in, "restart")
}

// UnsetConfig removes config vars on each target, then restarts like SetConfig.
func (c *Client) UnsetConfig(ctx context.Context, keys []string, noRestart bool) error {
	sort.Strings(keys)
	return c.eachWatched(ctx, c.configArgv("config:unset", keys, noRestart), nil, "restart")
}

func (c *Client) configArgv(cmd string, keys []string, noRestart bool) []string {
	argv := append([]string{cmd, c.App, c.Env}, keys...)
	if cmd == "config:set" {
		argv = append(argv, "--stdin")
	}
	if noRestart {
		return append(argv, "--no-restart")
	}
	return append(argv, "--wait")
}

// Scale sets instance counts ("web=2") on each target and restarts the app
// there (unless noRestart), watching it go live. When the environment uses
// roles, the counts are recorded on every server (a web server keeps them
// for when no worker server is left) but applied, by a restart, only on
// the servers that run those types.
func (c *Client) Scale(ctx context.Context, counts []string, noRestart bool) error {
	argv := append([]string{"ps:scale", c.App, c.Env}, counts...)
	if !c.placing() {
		if noRestart {
			return c.eachWatched(ctx, append(argv, "--no-restart"), nil, "restart")
		}
		return c.eachWatched(ctx, append(argv, "--wait"), nil, "restart")
	}
	var types []string
	for _, a := range counts {
		typ, _, _ := strings.Cut(a, "=")
		types = append(types, typ)
	}
	var on []string
	for i, t := range c.Targets {
		p := c.placementOf(t)
		runs := slices.ContainsFunc(types, func(typ string) bool { return c.Roles.Runs(p, typ) })
		a := append(slices.Clone(argv), "--no-restart")
		if runs {
			on = append(on, t.Name()+" ("+p.Role+")")
			if !noRestart {
				a[len(a)-1] = "--wait"
			}
		}
		if err := c.watchOne(ctx, t, a, nil, "restart"); err != nil {
			if rest := c.Targets[i+1:]; len(rest) > 0 && ctx.Err() == nil {
				err = fmt.Errorf("%w\nnot done on: %s", err, names(rest))
			}
			return err
		}
	}
	if len(on) == 0 {
		c.say("%s run on no server of %s: the counts are recorded for when they do", strings.Join(types, ", "), c.Env)
	} else {
		c.say("%s: applied on %s", strings.Join(counts, " "), strings.Join(on, ", "))
	}
	return nil
}

// HostConfig is one server's config vars (`jepush config --json`).
type HostConfig struct {
	Host  string            `json:"host"`
	Vars  map[string]string `json:"vars"`
	Error string            `json:"error,omitempty"`
}

// ShowConfigJSON prints the config vars of every target as one JSON
// object, {"app", "env", "hosts": [HostConfig...]}; it fails, after
// printing, if a target could not answer.
func (c *Client) ShowConfigJSON(ctx context.Context) error {
	var hosts []HostConfig
	var failed []string
	for _, t := range c.Targets {
		h := HostConfig{Host: t.Name(), Vars: map[string]string{}}
		if err := c.agentJSON(ctx, t, "config", &h.Vars); err != nil {
			h.Error = err.Error()
			failed = append(failed, t.Name())
		}
		hosts = append(hosts, h)
	}
	if err := c.printHostsJSON(hosts); err != nil {
		return err
	}
	return hostsDone(ctx, failed, "config vars")
}
