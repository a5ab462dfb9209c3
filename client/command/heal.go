package command

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jecloud/jecloud/internal/bootstrap"
	"github.com/jecloud/jecloud/internal/globalstate"
)

func healCommand() *cli.Command {
	return &cli.Command{
		Name:      "heal",
		Usage:     "replace the EC2 servers of an environment that are gone or unhealthy",
		ArgsUsage: "ENV",
		Description: "Finds the servers of ENV (target = \"ec2\") whose instance is gone (not found,\n" +
			"terminated, stopped), or fails its EC2 status checks, or (with --stale D) whose\n" +
			"report in the global state is older than D, and replaces each with a new\n" +
			"instance: same name, role, user-data and IAM role; the old instance is\n" +
			"terminated if it is still there. With elastic_ip = true the environment's\n" +
			"Elastic IP moves to the replacement. With deploy = \"s3\" the replacement fetches\n" +
			"the live release itself; with SSH deploys the next push gives it. --dry-run\n" +
			"lists, replaces nothing. See docs/ec2.md#healing.",
		Flags: []cli.Flag{dirFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print what was found and done as JSON"},
			&cli.BoolFlag{Name: "dry-run", Usage: "list the servers that need replacing; replace nothing"},
			&cli.DurationFlag{Name: "stale", Usage: "also replace a server whose last report is older than this (0: off; servers report when what they run changes, so keep it well above your deploy interval)"},
		},
		Action: func(c *cli.Context) error {
			if err := args(c, 1, 1, "ENV"); err != nil {
				return err
			}
			stale := c.Duration("stale")
			if stale < 0 || stale > 0 && stale < time.Minute {
				return usage("--stale %s: give 0 (off) or at least 1m (servers report at most once a minute)", stale)
			}
			dry := c.Bool("dry-run")
			start := time.Now()
			x, err := openEC2(c, c.String("dir"), c.Args().Get(0), !dry)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				x.opts.Log = c.App.ErrWriter
			}
			sick, _, err := bootstrap.Check(c.Context, x.api, x.st, x.opts, stale, time.Now())
			if err != nil {
				return err
			}
			res := healResult{App: x.opts.App, Env: x.opts.Env, Sick: sick, DryRun: dry}
			if res.Sick == nil {
				res.Sick = []bootstrap.Sick{}
			}
			if len(sick) > 0 && !dry {
				servers, err := bootstrap.Heal(c.Context, x.api, x.st, x.opts, sick)
				if err != nil {
					return err
				}
				res.Servers = servers
			}
			if len(sick) > 0 && !dry && x.s3Deploy {
				// The replacements follow the document and fetch the live
				// release now, as after a push.
				cl, _, err := loadClient(c, c.String("dir"), x.opts.Env, false)
				if err != nil {
					return err
				}
				if err := cl.FollowAll(c.Context); err != nil {
					return err
				}
			}
			if x.elasticIP && !dry {
				if res.ElasticIP, err = bootstrap.EnsureAddress(c.Context, x.api, x.st, x.opts); err != nil {
					return err
				}
				if doc, _, err := x.st.Get(c.Context, x.opts.App, x.opts.Env); err == nil {
					res.Servers = doc.Servers
				}
			}
			res.Seconds = time.Since(start).Seconds()
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			res.print(c.App.Writer, x.s3Deploy)
			return nil
		},
	}
}

type healResult struct {
	App       string               `json:"app"`
	Env       string               `json:"env"`
	DryRun    bool                 `json:"dry_run"`
	Sick      []bootstrap.Sick     `json:"sick"`
	Servers   []globalstate.Server `json:"servers,omitempty"`
	ElasticIP string               `json:"elastic_ip,omitempty"`
	Seconds   float64              `json:"seconds"`
}

// print says what heal found and did, for a person.
func (r healResult) print(w io.Writer, s3Deploy bool) {
	if len(r.Sick) == 0 {
		fmt.Fprintf(w, "%s/%s: every server is healthy (%.1f s)\n", r.App, r.Env, r.Seconds)
		return
	}
	for _, s := range r.Sick {
		verb := "replaced"
		if r.DryRun {
			verb = "needs replacing"
		}
		fmt.Fprintf(w, "%s (%s) %s: %s\n", s.Server, s.InstanceID, verb, s.Reason)
	}
	if r.DryRun {
		fmt.Fprintf(w, "run `jepush heal %s` to replace them\n", r.Env)
		return
	}
	for _, s := range r.Servers {
		for _, k := range r.Sick {
			if k.Server == s.Name {
				fmt.Fprintf(w, "%s: now %s at %s\n", s.Name, s.InstanceID, s.Host)
			}
		}
	}
	if r.ElasticIP != "" {
		fmt.Fprintf(w, "elastic IP %s is on the replacement\n", r.ElasticIP)
	}
	fmt.Fprintf(w, "%s/%s healed in %.1f s\n", r.App, r.Env, r.Seconds)
	if !s3Deploy {
		fmt.Fprintf(w, "the replacement runs no release yet: `jepush DIR %s` deploys the live one to it (deploy = \"s3\" servers fetch it themselves)\n", r.Env)
	}
}

// healHint prints, before a push, the servers of the environment that
// need replacing, and the command that replaces them: a push does not
// heal by itself.
func healHint(c *cli.Context, x *ec2Env) {
	sick, _, err := bootstrap.Check(c.Context, x.api, x.st, x.opts, 0, time.Now())
	if err != nil || len(sick) == 0 {
		return
	}
	for _, s := range sick {
		fmt.Fprintf(c.App.ErrWriter, "%s (%s) needs replacing: %s\n", s.Server, s.InstanceID, s.Reason)
	}
	fmt.Fprintf(c.App.ErrWriter, "`jepush heal %s` replaces it\n", x.opts.Env)
}
