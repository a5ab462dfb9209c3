package push

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/jecloud/jecloud/internal/lines"
	"github.com/jecloud/jecloud/internal/placement"
	"github.com/jecloud/jecloud/internal/remote"
)

// HostResult is where a push or a rollback left one server, for --json:
// the version asked for (a push's; empty for a rollback), the version
// live there now, and the state: "live" (the version asked for is live;
// for a rollback, some version is), "failed" (with the reason),
// "deploying" (still under way: the step is in Reason), "destroying",
// "not deployed" (the run stopped before this server), or "unknown" (the
// server did not answer: Error says why). URLs are where it is served:
// the server's address (a web server) and the environment's domains.
type HostResult struct {
	Host    string   `json:"host"`
	Version string   `json:"version,omitempty"`
	Live    string   `json:"live,omitempty"`
	State   string   `json:"state"`
	Reason  string   `json:"reason,omitempty"`
	URLs    []string `json:"urls,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// resultStatus is the part of `jeagent status --json` a result reads.
type resultStatus struct {
	Apps []struct {
		AppStatus
		Domains    []string        `json:"domains"`
		Destroying json.RawMessage `json:"destroying"`
	} `json:"apps"`
}

// Results asks every target where the app environment stands after a
// push of version (or a rollback: version "").
func (c *Client) Results(ctx context.Context, version string) []HostResult {
	out := []HostResult{}
	for _, t := range c.Targets {
		hs := c.statusOne(ctx, t)
		r := HostResult{Host: t.Name(), Version: version, State: "unknown", Error: hs.Error}
		if hs.Error == "" {
			var st resultStatus
			if err := json.Unmarshal(hs.Status, &st); err != nil {
				r.Error = fmt.Sprintf("%s: cannot read its status: %v", t.Name(), err)
			} else {
				printable(&st)
				found := false
				for _, a := range st.Apps {
					if a.App == c.App && a.Env == c.Env {
						r = resultOf(t, version, a.AppStatus, a.Domains, a.Destroying != nil)
						found = true
					}
				}
				if !found {
					r.State = "not deployed"
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// resultOf is where one server's status leaves a push of version (or a
// rollback: version "").
func resultOf(t remote.Target, version string, a AppStatus, domains []string, destroying bool) HostResult {
	r := HostResult{Host: t.Name(), Version: version, Live: a.CurrentVersion}
	var failed *Deployment
	for i := range a.RecentFailed {
		if f := &a.RecentFailed[i]; version == "" || f.Version == version {
			failed = f
		}
	}
	switch {
	case a.Error != "":
		r.State, r.Error = "unknown", a.Error
	case destroying:
		r.State = "destroying"
	case a.Deployment != nil && (version == "" || a.Deployment.Version == version):
		r.State, r.Reason = "deploying", "at step "+a.Deployment.State
	case version != "" && a.CurrentVersion == version, version == "" && a.CurrentVersion != "":
		r.State = "live"
	case failed != nil:
		r.State, r.Reason = "failed", failed.Reason
	default:
		r.State = "not deployed"
	}
	if r.State == "live" {
		if (t.Role == "" || t.Role == placement.Web) && t.Dest != "" {
			r.URLs = append(r.URLs, "http://"+urlHost(hostOf(t.Dest))+"/")
		}
		for _, d := range domains {
			r.URLs = append(r.URLs, "https://"+d+"/")
		}
	}
	return r
}

// PrintResults prints the results of a push or a rollback of version as
// one JSON object: {"app", "env", "ok", "error", "hosts": [HostResult...]}
// (the shape of status --json and releases --json, with the outcome).
func (c *Client) PrintResults(ctx context.Context, version string, opErr error) error {
	// The servers are asked even after Ctrl-C: what they did goes on.
	hosts := c.Results(context.WithoutCancel(ctx), version)
	doc := struct {
		App   string       `json:"app"`
		Env   string       `json:"env"`
		OK    bool         `json:"ok"`
		Error string       `json:"error,omitempty"`
		Hosts []HostResult `json:"hosts"`
	}{App: c.App, Env: c.Env, OK: opErr == nil, Hosts: hosts}
	if opErr != nil {
		doc.Error = opErr.Error()
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := c.Stdout.Write(lines.PrintableJSON(b.Bytes()))
	return err
}
