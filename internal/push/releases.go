package push

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"
)

// Release is one deployment on a server (`jeagent releases --json`).
type Release struct {
	Version  string    `json:"version"`
	Date     time.Time `json:"date"`
	By       string    `json:"by,omitempty"`
	Result   string    `json:"result"` // live, deployed, failed, deploying
	Reason   string    `json:"reason,omitempty"`
	OnServer bool      `json:"on_server"`
}

// HostReleases is one server's history.
type HostReleases struct {
	Host     string    `json:"host"`
	Releases []Release `json:"releases"`
	Error    string    `json:"error,omitempty"`
}

// Releases prints each server's deployments, newest first.
func (c *Client) Releases(ctx context.Context, asJSON bool) error {
	var hosts []HostReleases
	var failed []string
	for _, t := range c.Targets {
		h := HostReleases{Host: t.Name(), Releases: []Release{}}
		var doc struct {
			Releases []Release `json:"releases"`
		}
		if err := c.agentJSON(ctx, t, "releases", &doc); err != nil {
			h.Error = err.Error()
			failed = append(failed, t.Name())
		} else {
			h.Releases = doc.Releases
		}
		hosts = append(hosts, h)
	}
	if asJSON {
		if err := c.printHostsJSON(hosts); err != nil {
			return err
		}
		return hostsDone(ctx, failed, "release list")
	}
	w := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "HOST\tVERSION\tDATE\tRESULT\tBY\tREASON")
	for _, h := range hosts {
		if h.Error != "" {
			fmt.Fprintf(w, "%s\t%s\n", h.Host, c.style("bad", "error: "+oneLine(h.Error)))
			continue
		}
		if len(h.Releases) == 0 {
			fmt.Fprintf(w, "%s\tno deployments yet\n", h.Host)
		}
		for _, r := range h.Releases {
			result := r.Result
			switch {
			case r.Result == "live":
				result = c.style("ok", result)
			case r.Result == "failed":
				result = c.style("bad", result)
			}
			if !r.OnServer && r.Result != "live" {
				result += " (removed)"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", h.Host, r.Version, r.Date.Format(time.RFC3339), result, r.By, oneLine(r.Reason))
		}
	}
	w.Flush()
	return hostsDone(ctx, failed, "release list")
}
