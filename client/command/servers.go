package command

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/urfave/cli/v2"

	"github.com/jecloud/jecloud/internal/bootstrap"
	"github.com/jecloud/jecloud/internal/globalstate"
	"github.com/jecloud/jecloud/internal/lines"
	"github.com/jecloud/jecloud/internal/placement"
	"github.com/jecloud/jecloud/internal/remote"
)

func serversCommand() *cli.Command {
	return &cli.Command{
		Name:      "servers",
		Usage:     "list the EC2 servers of an environment",
		ArgsUsage: "ENV",
		Description: "Lists the servers of ENV (target = \"ec2\") from the global state on S3, with the\n" +
			"state of their instances and what each last reported (its observation object;\n" +
			"--json: the document with each server's \"observed\"), and the health of each\n" +
			"target of its load balancer if it has one (--json: \"load_balancer\"). See docs/ec2.md.",
		Flags: []cli.Flag{dirFlag(), &cli.BoolFlag{Name: "json", Usage: "print the state document as JSON"}},
		Action: func(c *cli.Context) error {
			if err := args(c, 1, 1, "ENV"); err != nil {
				return err
			}
			x, err := openEC2(c, c.String("dir"), c.Args().Get(0), false)
			if err != nil {
				return err
			}
			e, _, err := x.st.Get(c.Context, x.opts.App, x.opts.Env)
			if err != nil {
				return err
			}
			// Each server reports to an observation object of its own
			// (issue #17), not into the document.
			if err := x.st.Observe(c.Context, e); err != nil {
				return err
			}
			lb, err := balancerHealth(c.Context, x)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				doc, err := withBalancer(e, lb)
				if err != nil {
					return err
				}
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(doc)
			}
			if err := printServers(c, x, e); err != nil {
				return err
			}
			printBalancer(c.App.Writer, e, lb)
			return nil
		},
	}
}

func printServers(c *cli.Context, x *ec2Env, e *globalstate.Env) error {
	w := c.App.Writer
	instances, err := bootstrap.Tagged(c.Context, x.api, x.opts.App, x.opts.Env)
	if err != nil {
		return err
	}
	states := map[string]string{}
	for _, in := range instances {
		states[aws.ToString(in.InstanceId)] = string(in.State.Name)
	}
	if len(e.Servers) == 0 {
		fmt.Fprintf(w, "%s/%s has no servers (%s)\n", x.opts.App, x.opts.Env, x.st.URL(x.opts.App, x.opts.Env))
	}
	for _, s := range e.Servers {
		status := "ready"
		if o := s.Observed; o != nil {
			switch {
			case o.Error != "":
				status += ", failed " + o.For + ": " + o.Error
			case o.Deploying != "":
				status += ", deploying " + o.Deploying
			case o.CurrentVersion != "":
				status += ", live " + o.CurrentVersion
			}
		}
		if b := s.Bootstrap; b != nil {
			status = "being made: " + b.Step
			if b.Error != "" {
				status += " (last error: " + b.Error + ")"
			}
		}
		inst := s.InstanceID
		if inst != "" {
			st := states[inst]
			if st == "" {
				st = "gone"
			}
			delete(states, inst)
			inst += " " + st
		} else {
			inst = "added by hand"
		}
		host := s.Host
		if s.User != "" && host != "" {
			host = s.User + "@" + host
		}
		fmt.Fprintf(w, "%-24s %-8s %-24s %-30s %s\n", s.Name, s.RoleOrWeb(), host, inst, lines.Printable(status))
	}
	for id, st := range states {
		fmt.Fprintf(w, "%-24s %-8s %-24s %-30s %s\n", "?", "", "", id+" "+st, "tagged for this environment but not in its state: `jepush destroy` ends it")
	}
	return nil
}

func scaleServersCommand() *cli.Command {
	return &cli.Command{
		Name:      "scale",
		Usage:     "add or remove EC2 servers of an environment (of one role)",
		ArgsUsage: "ENV N",
		Description: "Makes ENV (target = \"ec2\") have N web servers, or with --role ROLE N servers of\n" +
			"that role (`jepush scale prod --role worker 2`): they run the process types that\n" +
			"jecloud.toml's [roles] places on ROLE, and the web servers the others. New servers\n" +
			"are made like the first (and get the live version at the next push); extra ones of\n" +
			"that role, the newest first, are terminated, only if JeCloud tagged them for ENV.\n" +
			"N is kept in the global state. A role other than web may go down to 0: its process\n" +
			"types go back to the web servers (restarted there first, when they run a version).",
		Flags: []cli.Flag{dirFlag(), &cli.StringFlag{Name: "role", Value: placement.Web, Usage: "the role of the servers to add or remove (web, worker, ...)"}},
		Action: func(c *cli.Context) error {
			if err := args(c, 2, 2, "ENV N"); err != nil {
				return err
			}
			role := c.String("role")
			if err := placement.CheckRole(role); err != nil {
				return usage("--role: %v", err)
			}
			n, err := strconv.Atoi(c.Args().Get(1))
			low := 1
			if role != placement.Web {
				low = 0
			}
			if err != nil || n < low || n > 100 {
				return usage("N %q: give a number of %s servers from %d to 100", c.Args().Get(1), role, low)
			}
			env := c.Args().Get(0)
			x, err := openEC2(c, c.String("dir"), env, true)
			if err != nil {
				return err
			}
			x.opts.Role = role
			if n == 0 {
				// The role's last servers go: its process types start on the
				// web servers before they stop on the role's servers.
				if err := placeWithout(c, x, env, role); err != nil {
					return err
				}
			}
			servers, err := bootstrap.Scale(c.Context, x.api, x.st, x.opts, n)
			if err != nil {
				return err
			}
			count := map[string]int{}
			for _, s := range servers {
				count[s.RoleOrWeb()]++
			}
			fmt.Fprintf(c.App.Writer, "%s/%s has %d %s server(s), %d in all\n", x.opts.App, x.opts.Env, count[role], role, len(servers))
			return nil
		},
	}
}

// placeWithout records that role has no server any more (desired_roles
// 0, which the servers following the document read too), then tells the
// other ready servers of env so (`jeagent place`), so that the web servers
// start its process types before its servers are terminated.
func placeWithout(c *cli.Context, x *ec2Env, env, role string) error {
	doc, err := x.st.Update(c.Context, x.opts.App, x.opts.Env, func(e *globalstate.Env) error {
		if e.DesiredRoles == nil {
			e.DesiredRoles = map[string]int{}
		}
		e.DesiredRoles[role] = 0
		return nil
	})
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(doc.Servers, func(s globalstate.Server) bool { return s.RoleOrWeb() == role && s.Ready() }) {
		return nil
	}
	cl, _, err := loadClient(c, c.String("dir"), env, false)
	if err != nil {
		return err
	}
	cl.Targets = slices.DeleteFunc(cl.Targets, func(t remote.Target) bool { return t.Role == role })
	return cl.Place(c.Context)
}
func destroyCommand() *cli.Command {
	return &cli.Command{
		Name:      "destroy",
		Usage:     "terminate the EC2 servers of an environment",
		ArgsUsage: "ENV",
		Description: "Terminates every instance JeCloud tagged for ENV (jecloud:app and jecloud:env;\n" +
			"nothing else in the account), deletes its load balancer (with its target group\n" +
			"and ACM certificate),\n" +
			"its security groups and empties its server\n" +
			"list in the global state (its history stays). Asks you to type ENV's name first\n" +
			"unless --yes.",
		Flags: []cli.Flag{dirFlag(), &cli.BoolFlag{Name: "yes", Usage: "do not ask for confirmation"}},
		Action: func(c *cli.Context) error {
			if err := args(c, 1, 1, "ENV"); err != nil {
				return err
			}
			x, err := openEC2(c, c.String("dir"), c.Args().Get(0), false)
			if err != nil {
				return err
			}
			list, err := bootstrap.Tagged(c.Context, x.api, x.opts.App, x.opts.Env)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "this terminates %d instance(s) of %s/%s:\n", len(list), x.opts.App, x.opts.Env)
			for _, in := range list {
				fmt.Fprintf(c.App.ErrWriter, "  %s %s %s\n", aws.ToString(in.InstanceId), aws.ToString(in.PublicIpAddress), in.State.Name)
			}
			if !c.Bool("yes") {
				fmt.Fprintf(c.App.ErrWriter, "type %q to go on: ", x.opts.Env)
				line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
				if strings.TrimSpace(line) != x.opts.Env {
					return fmt.Errorf("not confirmed: nothing was terminated")
				}
			}
			if err := bootstrap.DestroyBalancer(c.Context, x.api, x.elb, x.opts); err != nil {
				return err
			}
			if err := bootstrap.DestroyTLS(c.Context, x.acm, x.opts); err != nil {
				return err
			}
			if err := bootstrap.Destroy(c.Context, x.api, x.st, x.opts); err != nil {
				return err
			}
			// The Elastic IP (elastic_ip), also one left by an earlier setting.
			if err := bootstrap.ReleaseAddresses(c.Context, x.api, x.opts); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s/%s destroyed: no servers left\n", x.opts.App, x.opts.Env)
			return nil
		},
	}
}
