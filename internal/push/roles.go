package push

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jecloud/jecloud/internal/placement"
	"github.com/jecloud/jecloud/internal/remote"
)

// placing reports whether the environment uses roles: jecloud.toml has
// [roles] or a server has a role other than web. Only then are the
// servers told their placement (so that agents older than roles are
// deployed to as before).
func (c *Client) placing() bool {
	if len(c.Roles) > 0 {
		return true
	}
	return slices.ContainsFunc(c.Targets, func(t remote.Target) bool { return roleOf(t) != placement.Web })
}

func roleOf(t remote.Target) string {
	if t.Role == "" {
		return placement.Web
	}
	return t.Role
}

// presentRoles returns the roles that have servers: those of the targets
// and EnvRoles, sorted.
func (c *Client) presentRoles() []string {
	out := slices.Clone(c.EnvRoles)
	for _, t := range c.Targets {
		if r := roleOf(t); !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// placementOf returns where target t stands: its role and the roles the
// environment has.
func (c *Client) placementOf(t remote.Target) *placement.Server {
	return &placement.Server{Role: roleOf(t), Roles: c.presentRoles()}
}

// placeArgs are the agent's --role and --roles flags for t, if the
// environment uses roles.
func (c *Client) placeArgs(t remote.Target) []string {
	if !c.placing() {
		return nil
	}
	return []string{"--role", roleOf(t), "--roles", strings.Join(c.presentRoles(), ",")}
}

// sayPlacement tells where the process types of [roles] run, and warns
// when a role has no server (its types stay on the web servers) or when
// servers have a role [roles] gives no type.
func (c *Client) sayPlacement() {
	if !c.placing() {
		return
	}
	present := c.presentRoles()
	for _, r := range present {
		if r == placement.Web {
			continue
		}
		if types := c.Roles.TypesOf(r); len(types) > 0 {
			c.say("%s servers run %s; web servers run the other process types", r, strings.Join(types, ", "))
		} else {
			c.say("warning: %s has %s servers but [roles] of jecloud.toml places no process type on them: add %s = [\"TYPE\", ...] to [roles]", c.Env, r, r)
		}
	}
	for _, r := range c.Roles.Homeless(present) {
		c.say("%s has no %s server: %s run on the web servers (add %s servers to move them)", c.Env, r, strings.Join(c.Roles.TypesOf(r), ", "), r)
	}
	if !slices.Contains(present, placement.Web) {
		c.say("warning: %s has no web server: process types that no role of [roles] names run nowhere", c.Env)
	}
}

// Place tells each target its role and the roles the environment has
// (`jeagent place`); a server whose placement changed restarts its live
// version with the process types placed there, and jepush watches it.
func (c *Client) Place(ctx context.Context) error {
	for i, t := range c.Targets {
		argv := append([]string{"place", c.App, c.Env}, c.placeArgs(t)...)
		if len(argv) == 3 {
			return nil // no roles in this environment
		}
		if err := c.watchOne(ctx, t, append(argv, "--wait"), nil, "restart"); err != nil {
			if rest := c.Targets[i+1:]; len(rest) > 0 && ctx.Err() == nil {
				err = fmt.Errorf("%w\nnot done on: %s", err, names(rest))
			}
			return err
		}
	}
	return nil
}
