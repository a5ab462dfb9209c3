package push

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/jecloud/jecloud/internal/remote"
)

// Process is one line of `jeagent ps --json`.
type Process struct {
	Unit     string    `json:"unit"`
	Type     string    `json:"type"`
	Instance string    `json:"instance"`
	State    string    `json:"state"`
	Sub      string    `json:"sub"`
	PID      uint32    `json:"pid"`
	Restarts uint32    `json:"restarts"`
	Since    time.Time `json:"since"`
}

// HostProcesses is one target's answer to ps.
type HostProcesses struct {
	Host      string    `json:"host"`
	Role      string    `json:"role,omitempty"` // when the environment uses roles
	Processes []Process `json:"processes"`
	Error     string    `json:"error,omitempty"`
}

// PS asks every target for the environment's processes and prints them, as
// JSON ({"app", "env", "hosts": [HostProcesses...]}) or as a table. It
// fails if a target could not answer.
func (c *Client) PS(ctx context.Context, asJSON bool) error {
	var hosts []HostProcesses
	var failed []string
	for _, t := range c.Targets {
		h := HostProcesses{Host: t.Name(), Processes: []Process{}}
		if c.placing() {
			h.Role = roleOf(t)
		}
		var doc struct {
			Processes []Process `json:"processes"`
		}
		if err := c.agentJSON(ctx, t, "ps", &doc); err != nil {
			h.Error = err.Error()
			failed = append(failed, t.Name())
		} else {
			h.Processes = doc.Processes
		}
		hosts = append(hosts, h)
	}
	if asJSON {
		if err := c.printHostsJSON(hosts); err != nil {
			return err
		}
	} else {
		w := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "HOST\tPROCESS\tSTATE\tRESTARTS\tUP SINCE")
		for _, h := range hosts {
			if h.Role != "" {
				h.Host += " (" + h.Role + ")"
			}
			if h.Error != "" {
				fmt.Fprintf(w, "%s\t%s\n", h.Host, c.style("bad", "error: "+oneLine(h.Error)))
				continue
			}
			if len(h.Processes) == 0 {
				fmt.Fprintf(w, "%s\tno processes\n", h.Host)
			}
			for _, p := range h.Processes {
				name := p.Type
				if p.Instance != "" {
					name += "." + p.Instance
				}
				state := p.State + "/" + p.Sub
				if p.State != "active" {
					state = c.style("bad", state)
				}
				since := ""
				if !p.Since.IsZero() {
					since = fmt.Sprintf("%s (%s ago)", p.Since.Format(time.RFC3339), time.Since(p.Since).Round(time.Second))
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\n", h.Host, name, state, p.Restarts, since)
			}
		}
		w.Flush()
	}
	return hostsDone(ctx, failed, "process list")
}

// agentJSON runs `jeagent VERB APP ENV --json` on t and decodes what it
// prints into doc, its strings made printable (what a server sends is
// shown, never obeyed). The error names the host.
func (c *Client) agentJSON(ctx context.Context, t remote.Target, verb string, doc any) error {
	r, err := c.open(ctx, t)
	if err != nil {
		return err
	}
	defer r.Close()
	var out bytes.Buffer
	tl := &tail{}
	if err := r.Run(ctx, []string{verb, c.App, c.Env, "--json"}, nil, &out, tl); err != nil {
		return explain(t.Name(), []string{verb}, err, tl)
	}
	if err := json.Unmarshal(out.Bytes(), doc); err != nil {
		return fmt.Errorf("%s: jeagent %s --json printed something that is not its JSON: %v", t.Name(), verb, err)
	}
	printable(doc)
	return nil
}
