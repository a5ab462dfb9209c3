package command

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"

	"github.com/jecloud/jecloud/internal/bootstrap"
	"github.com/jecloud/jecloud/internal/globalstate"
	"github.com/jecloud/jecloud/internal/lines"
	"github.com/jecloud/jecloud/internal/placement"
	"github.com/jecloud/jecloud/internal/push"
	"github.com/jecloud/jecloud/internal/remote"
	"github.com/jecloud/jecloud/internal/routes"
)

// ec2Balancer returns the load balancer in front of an EC2 environment's
// web servers, as a push's rotation: made when the environment has two
// ready web servers or more and servers may be made (a push), found
// otherwise; nil if there is none.
func ec2Balancer(ctx context.Context, x *ec2Env, servers []globalstate.Server, makeServers bool) (push.Rotation, error) {
	web := 0
	ids := map[string]string{}
	for _, s := range servers {
		if s.Ready() && s.Host != "" && s.RoleOrWeb() == placement.Web {
			web++
			dest := s.Host
			if s.User != "" {
				dest = s.User + "@" + s.Host
			}
			ids[dest] = s.InstanceID
		}
	}
	var b *bootstrap.Balancer
	var err error
	if makeServers && web >= 2 {
		b, err = bootstrap.EnsureBalancer(ctx, x.ec2lb(), x.elb, x.opts)
	} else {
		b, err = bootstrap.FindBalancer(ctx, x.elb, x.opts.App, x.opts.Env, x.opts.Log)
	}
	if err != nil || b == nil {
		return nil, err
	}
	fmt.Fprintf(x.opts.Log, "load balancer %s in front of the web servers: http://%s/\n", b.Name, b.DNSName)
	if makeServers && web >= 2 {
		if err := balancerTLS(ctx, x, b); err != nil {
			return nil, err
		}
	}
	return rotation{b: b, ids: ids}, nil
}

// rotation is push.Rotation through an EC2 environment's load balancer.
type rotation struct {
	b   *bootstrap.Balancer
	ids map[string]string // push target's Dest: instance ID
}

func (r rotation) Out(ctx context.Context, t remote.Target) error {
	id := r.ids[t.Dest]
	if id == "" { // added by hand: not behind the balancer
		return nil
	}
	return r.b.Out(ctx, id, t.Name())
}

func (r rotation) In(ctx context.Context, t remote.Target) error {
	id := r.ids[t.Dest]
	if id == "" {
		return nil
	}
	host := t.Dest
	if i := strings.LastIndex(host, "@"); i >= 0 {
		host = host[i+1:]
	}
	return r.b.In(ctx, id, t.Name(), "http://"+net.JoinHostPort(host, "80")+routes.HealthPath)
}

// balancerView is the load balancer as `jepush servers` shows it.
type balancerView struct {
	Name    string                   `json:"name"`
	DNSName string                   `json:"dns_name"`
	Targets []bootstrap.TargetHealth `json:"targets"`
}

// balancerHealth reads the environment's load balancer and its targets'
// health (nil: none).
func balancerHealth(ctx context.Context, x *ec2Env) (*balancerView, error) {
	b, err := bootstrap.FindBalancer(ctx, x.elb, x.opts.App, x.opts.Env, io.Discard)
	if err != nil || b == nil {
		return nil, err
	}
	hs, err := b.Health(ctx)
	if err != nil {
		return nil, err
	}
	return &balancerView{Name: b.Name, DNSName: b.DNSName, Targets: hs}, nil
}

// withBalancer is the state document as JSON with "load_balancer" added.
func withBalancer(e *globalstate.Env, v *balancerView) (any, error) {
	if v == nil {
		return e, nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["load_balancer"] = v
	return m, nil
}

// printBalancer prints the load balancer and each target's health, by
// server name where the state knows the instance.
func printBalancer(w io.Writer, e *globalstate.Env, v *balancerView) {
	if v == nil {
		return
	}
	names := map[string]string{}
	for _, s := range e.Servers {
		names[s.InstanceID] = s.Name
	}
	fmt.Fprintf(w, "load balancer %s: http://%s/\n", v.Name, v.DNSName)
	if len(v.Targets) == 0 {
		fmt.Fprintf(w, "  no targets registered\n")
	}
	for _, t := range v.Targets {
		name := names[t.InstanceID]
		if name == "" {
			name = "?"
		}
		state := t.State
		if t.Reason != "" {
			state += " (" + t.Reason + ")"
		}
		fmt.Fprintf(w, "  %-24s %-20s %s\n", name, t.InstanceID, lines.Printable(state))
	}
}

// balancerTLS gives the balancer HTTPS for the environment's domains
// (jepush domains:add): an ACM certificate, whose DNS validation records
// it prints while ACM waits for them, then an HTTPS listener.
func balancerTLS(ctx context.Context, x *ec2Env, b *bootstrap.Balancer) error {
	doc, _, err := x.st.Get(ctx, x.opts.App, x.opts.Env)
	if err != nil {
		return err
	}
	if doc.Routing == nil || len(doc.Routing.Domains) == 0 {
		return nil
	}
	domains := slices.Clone(doc.Routing.Domains)
	slices.Sort(domains)
	recs, err := b.EnsureTLS(ctx, x.api, x.acm, x.opts, domains)
	if err != nil {
		return err
	}
	if len(recs) > 0 {
		fmt.Fprintf(x.opts.Log, "HTTPS on load balancer %s: ACM issues its certificate once these DNS records exist (add them at your DNS host; the push after that adds the HTTPS listener):\n", b.Name)
		for _, r := range recs {
			fmt.Fprintf(x.opts.Log, "  %s %s %s   (for %s)\n", r.Name, r.Type, r.Value, r.Domain)
		}
	}
	return nil
}
