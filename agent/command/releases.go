package command

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jecloud/jecloud/internal/lines"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/urfave/cli/v2"
)

// release is one deployment in `releases --json`: a version that went live,
// or one that failed, newest first.
type release struct {
	Version string    `json:"version"`
	Date    time.Time `json:"date"`
	By      string    `json:"by,omitempty"`
	// Result is "live" (the one serving now), "deployed" (went live, since
	// replaced), "failed", or "deploying" (under way).
	Result string `json:"result"`
	Reason string `json:"reason,omitempty"`
	// OnServer: its release is still on this server (rollback can go there).
	OnServer bool `json:"on_server"`
}

func releasesCommand() *cli.Command {
	return &cli.Command{
		Name:      "releases",
		Usage:     "list the deployments of an app environment, newest first",
		ArgsUsage: "APP ENV",
		Description: "From app.json: the versions that went live (deployed_versions), the ones that\n" +
			"failed (recent_failed_deployments, with the reason) and the one under way, each with its\n" +
			"date and who asked for it (jepush's USER@HOST, a git commit, the global state).",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON for scripts"}},
		Action: func(c *cli.Context) error {
			ae, err := appEnvArgs(c, 2, 2)
			if err != nil {
				return err
			}
			l := layout(c)
			var a state.App
			if err := state.Read(l.AppJSON(ae), &a); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return &exitError{3, fmt.Errorf("%s has never been deployed here (no %s)", ae, l.AppJSON(ae))}
				}
				return err
			}
			rs := releases(&a, func(id string) bool { return versionStore(c).Has(ae, id) })
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"app": ae.App, "env": ae.Env, "releases": rs})
			}
			if len(rs) == 0 {
				fmt.Fprintf(c.App.Writer, "%s: no deployments yet\n", ae)
				return nil
			}
			w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "VERSION\tDATE\tRESULT\tBY\tREASON")
			for _, r := range rs {
				result := r.Result
				if !r.OnServer && r.Result != "live" {
					result += " (removed)"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Version, r.Date.Format(time.RFC3339), result, lines.Printable(r.By), lines.Printable(firstLine(r.Reason)))
			}
			return w.Flush()
		},
	}
}

// releases merges app.json's history, newest first.
func releases(a *state.App, onServer func(string) bool) []release {
	var rs []release
	for _, d := range a.DeployedVersions {
		rs = append(rs, release{Version: d.Version, Date: d.Date, By: d.By, Result: "deployed"})
	}
	for _, f := range a.RecentFailedDeployments {
		rs = append(rs, release{Version: f.Version, Date: f.FailDate, By: f.By, Result: "failed", Reason: f.Reason})
	}
	if d := a.Deployment; d != nil {
		rs = append(rs, release{Version: d.Version, Date: d.RequestDate, By: d.By, Result: "deploying", Reason: "at step " + d.State})
	}
	slices.SortStableFunc(rs, func(x, y release) int { return y.Date.Compare(x.Date) })
	live := false
	for i := range rs {
		rs[i].OnServer = onServer(rs[i].Version)
		if !live && rs[i].Result == "deployed" && rs[i].Version == a.CurrentVersion {
			rs[i].Result, live = "live", true
		}
	}
	if rs == nil {
		rs = []release{}
	}
	return rs
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}
