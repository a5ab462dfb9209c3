package push

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jecloud/jecloud/internal/globalstate"
	"github.com/jecloud/jecloud/internal/lines"
	"github.com/jecloud/jecloud/internal/placement"
)

// ShowDomains prints the host names each target routes to the app
// environment, with their certificates (prefixed with the host when there
// are several), and, on EC2, those the global state keeps for every server.
func (c *Client) ShowDomains(ctx context.Context, json bool) error {
	argv := []string{"domains", c.App, c.Env}
	if json {
		argv = append(argv, "--json")
	}
	errs := []error{c.runEach(ctx, argv)}
	if st := c.state(); st != nil && !json {
		e, _, err := st.Get(ctx, c.App, c.Env)
		switch {
		case err != nil:
			errs = append(errs, err)
		case e.Routing == nil || len(e.Routing.Domains) == 0:
			c.say("global state %s: no domains", st.URL(c.App, c.Env))
		default:
			c.say("global state %s: domains %s (every server of %s adds them)", st.URL(c.App, c.Env),
				lines.Printable(strings.Join(e.Routing.Domains, " ")), c.Env)
		}
	}
	return errors.Join(errs...)
}

// AddDomains routes hosts (checked by the caller) to the app environment
// on each target, one after another: each agent refuses a host that
// another app environment there holds, and stops the run with the servers
// not done named. On EC2 the hosts are then kept in the global state, so
// that servers made later route them too.
func (c *Client) AddDomains(ctx context.Context, hosts []string) error {
	if err := c.eachWatched(ctx, append([]string{"domains:add", c.App, c.Env}, hosts...), nil, "change"); err != nil {
		return err
	}
	return c.updateRouting(ctx, func(r *globalstate.Routing) {
		for _, h := range hosts {
			if !slices.Contains(r.Domains, h) {
				r.Domains = append(r.Domains, h)
			}
		}
	})
}

// RemoveDomain stops routing host to the app environment on each target,
// and in the global state.
func (c *Client) RemoveDomain(ctx context.Context, host string) error {
	// The global state first: else a server's next sync would add it back.
	if err := c.updateRouting(ctx, func(r *globalstate.Routing) {
		r.Domains = slices.DeleteFunc(r.Domains, func(h string) bool { return h == host })
	}); err != nil {
		return err
	}
	return c.eachWatched(ctx, []string{"domains:remove", c.App, c.Env, host}, nil, "change")
}

// Maintenance turns maintenance mode on or off on each target and, on
// EC2, in the global state.
func (c *Client) Maintenance(ctx context.Context, on bool) error {
	verb := "maintenance:off"
	if on {
		verb = "maintenance:on"
	}
	// The global state first: a server that syncs meanwhile then takes the
	// new setting rather than putting the old one back.
	if err := c.updateRouting(ctx, func(r *globalstate.Routing) { r.Maintenance = &on }); err != nil {
		return err
	}
	return c.eachWatched(ctx, []string{verb, c.App, c.Env}, nil, "change")
}

// updateRouting changes the routing of the environment's global state
// document, when it has one (EC2).
func (c *Client) updateRouting(ctx context.Context, fn func(*globalstate.Routing)) error {
	st := c.state()
	if st == nil {
		return nil
	}
	if _, err := st.Update(ctx, c.App, c.Env, func(e *globalstate.Env) error {
		if e.Routing == nil {
			e.Routing = &globalstate.Routing{}
		}
		fn(e.Routing)
		if len(e.Routing.Domains) == 0 {
			e.Routing.Domains = nil
		}
		return nil
	}); err != nil {
		return fmt.Errorf("global state: %w", err)
	}
	c.say("kept in %s for every server of %s", st.URL(c.App, c.Env), c.Env)
	return nil
}

// state is the environment's global state, if it has one (EC2).
func (c *Client) state() *globalstate.Store {
	if c.State != nil {
		return c.State
	}
	if c.Global != nil {
		return c.Global.Store
	}
	return nil
}

// carryRouting gives the targets of a push over SSH the routing the global
// state keeps (servers that follow it take it themselves): a server made
// since the domains were added, or one that was down then, routes them
// too. A refusal is shown, and fails nothing: the version is live.
func (c *Client) carryRouting(ctx context.Context) {
	st := c.state()
	if st == nil || c.Global != nil {
		return
	}
	e, _, err := st.Get(ctx, c.App, c.Env)
	if err != nil {
		c.say("global state: %v (domains and maintenance not checked)", err)
		return
	}
	r := e.Routing
	if r == nil {
		return
	}
	var argvs [][]string
	if len(r.Domains) > 0 {
		argvs = append(argvs, append([]string{"domains:add", c.App, c.Env}, r.Domains...))
	}
	if r.Maintenance != nil {
		verb := "maintenance:off"
		if *r.Maintenance {
			verb = "maintenance:on"
		}
		argvs = append(argvs, []string{verb, c.App, c.Env})
	}
	for _, t := range c.Targets {
		r, err := c.open(ctx, t)
		if err != nil {
			c.say("%s: %v", t.Name(), err)
			continue
		}
		for _, argv := range argvs {
			var out strings.Builder
			if err := r.Run(ctx, argv, nil, &out, &out); err != nil {
				c.say("%s: jeagent %s: %v: %s", t.Name(), argv[0], err, lines.Printable(strings.TrimSpace(out.String())))
			}
		}
		r.Close()
	}
}

// sayServed prints, after a push to an EC2 environment, where it is served:
// the bare address of each web server (its front door sends it to the
// only app, or the default one) and each domain the global state keeps.
func (c *Client) sayServed(ctx context.Context) {
	st := c.state()
	if st == nil {
		return
	}
	var urls []string
	for _, t := range c.Targets {
		if (t.Role == "" || t.Role == placement.Web) && t.Dest != "" {
			urls = append(urls, "http://"+urlHost(hostOf(t.Dest))+"/")
		}
	}
	if e, _, err := st.Get(ctx, c.App, c.Env); err == nil && e.Routing != nil {
		for _, d := range e.Routing.Domains {
			urls = append(urls, "https://"+lines.Printable(d)+"/")
		}
	}
	for _, u := range urls {
		fmt.Fprintf(c.Stdout, "%s %s: served at %s\n", c.App, c.Env, u)
	}
}

// urlHost brackets an IPv6 address for a URL.
func urlHost(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}
