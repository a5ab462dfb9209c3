package push

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jecloud/jecloud/internal/lines"
	"github.com/jecloud/jecloud/internal/remote"
)

// AgentStatus is `jeagent status --json` as jepush reads it. Fields it
// does not show are kept in the raw JSON that --json prints.
type AgentStatus struct {
	Apps []AppStatus `json:"apps"`
}

// AppStatus is one app-environment on one server.
type AppStatus struct {
	App            string          `json:"app"`
	Env            string          `json:"env"`
	CurrentVersion string          `json:"current_version"`
	Deployment     *Deployment     `json:"deployment"`
	RecentFailed   []Deployment    `json:"recent_failed_deployments"`
	Backoff        json.RawMessage `json:"backoff"`
	Mail           *MailStatus     `json:"mail"`
	Error          string          `json:"error"`
}

// MailStatus is the app environment's mail relay on a server (hooks/mail).
type MailStatus struct {
	Listen      string `json:"listen"`
	Relay       string `json:"relay"`
	Queued      int    `json:"queued"`
	Deferred    int    `json:"deferred"`
	LastSent    string `json:"last_sent"`
	LastFailure *struct {
		Date   string `json:"date"`
		Status string `json:"status"`
		Reason string `json:"reason"`
	} `json:"last_failure"`
	Error string `json:"error"`
}

// Deployment is a pending, running or failed deployment.
type Deployment struct {
	Version     string `json:"version"`
	State       string `json:"state"`
	RequestDate string `json:"request_date"`
	StartDate   string `json:"start_date"`
	FailDate    string `json:"fail_date"`
	Reason      string `json:"reason"`
}

// HostStatus is one target's answer.
type HostStatus struct {
	Host   string          `json:"host"`
	Status json.RawMessage `json:"status,omitempty"` // as the agent printed it
	Error  string          `json:"error,omitempty"`  // why there is no status
}

// Status asks every target for the environment's status and prints it:
// as JSON ({"app", "env", "hosts": [HostStatus...]}) or for people. It
// fails if a target could not answer.
func (c *Client) Status(ctx context.Context, asJSON bool) error {
	var hosts []HostStatus
	var failed []string
	for _, t := range c.Targets {
		hs := c.statusOne(ctx, t)
		if hs.Error != "" {
			failed = append(failed, t.Name())
		}
		hosts = append(hosts, hs)
	}
	if asJSON {
		if err := c.printHostsJSON(hosts); err != nil {
			return err
		}
	} else {
		c.printStatus(hosts)
	}
	return hostsDone(ctx, failed, "status")
}

// printHostsJSON prints one answer per target as {"app", "env", "hosts"}.
func (c *Client) printHostsJSON(hosts any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(struct {
		App   string `json:"app"`
		Env   string `json:"env"`
		Hosts any    `json:"hosts"`
	}{c.App, c.Env, hosts}); err != nil {
		return err
	}
	// The agents' answers are passed on as they sent them: what JSON lets
	// stand raw but a terminal obeys (DEL, C1) is escaped.
	_, err := c.Stdout.Write(lines.PrintableJSON(b.Bytes()))
	return err
}

// hostsDone ends a command that asked every target: interrupted, or
// failed naming the targets that gave no what.
func hostsDone(ctx context.Context, failed []string, what string) error {
	if ctx.Err() != nil {
		return ErrInterrupted
	}
	if len(failed) > 0 {
		return fmt.Errorf("no %s from %s", what, strings.Join(failed, ", "))
	}
	return nil
}

func (c *Client) statusOne(ctx context.Context, t remote.Target) HostStatus {
	hs := HostStatus{Host: t.Name()}
	r, err := c.open(ctx, t)
	if err != nil {
		hs.Error = err.Error()
		return hs
	}
	defer r.Close()
	var out bytes.Buffer
	tl := &tail{}
	err = r.Run(ctx, []string{"status", c.App, c.Env, "--json"}, nil, &out, tl)
	// jeagent status exits 3 when the environment is not there and 1 when
	// its app.json does not parse, after printing what it found.
	if code, ok := remote.ExitCode(err); ok && (code == 3 || code == 1) && json.Valid(out.Bytes()) {
		err = nil
	}
	if err != nil {
		hs.Error = explain(t.Name(), []string{"status"}, err, tl).Error()
		return hs
	}
	if !json.Valid(out.Bytes()) {
		hs.Error = fmt.Sprintf("%s: jeagent status --json printed something that is not JSON: %.200q", t.Name(), out.String())
		return hs
	}
	hs.Status = json.RawMessage(bytes.TrimSpace(out.Bytes()))
	return hs
}

// printStatus prints statuses for people.
func (c *Client) printStatus(hosts []HostStatus) {
	w := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	for _, h := range hosts {
		if h.Error != "" {
			fmt.Fprintf(w, "%s\t%s\n", h.Host, c.style("bad", "error: "+oneLine(h.Error)))
			continue
		}
		var st AgentStatus
		if err := json.Unmarshal(h.Status, &st); err != nil {
			fmt.Fprintf(w, "%s\t%s\n", h.Host, c.style("bad", "cannot read its status: "+err.Error()))
			continue
		}
		printable(&st)
		found := false
		for _, a := range st.Apps {
			if a.App != c.App || a.Env != c.Env {
				continue
			}
			found = true
			c.printApp(w, h.Host, a)
		}
		if !found {
			fmt.Fprintf(w, "%s\tnothing deployed yet\n", h.Host)
		}
	}
	w.Flush()
}

func (c *Client) printApp(w io.Writer, host string, a AppStatus) {
	if a.Error != "" {
		fmt.Fprintf(w, "%s\t%s\n", host, c.style("bad", "app.json unreadable: "+a.Error))
		return
	}
	cur := a.CurrentVersion
	if cur == "" {
		cur = "none yet"
	}
	fmt.Fprintf(w, "%s\tlive\t%s\n", host, cur)
	if d := a.Deployment; d != nil {
		since := ""
		if d.StartDate != "" {
			since = " since " + ago(d.StartDate)
		} else if d.RequestDate != "" {
			since = ", requested " + ago(d.RequestDate)
		}
		fmt.Fprintf(w, "\tdeploying\t%s: %s%s\n", d.Version, d.State, since)
	}
	if len(a.Backoff) > 0 && string(a.Backoff) != "null" {
		fmt.Fprintf(w, "\tbackoff\t%s\n", lines.Printable(oneLine(string(a.Backoff)))) // raw JSON from the server
	}
	if m := a.Mail; m != nil {
		q := "queue empty"
		if m.Queued > 0 {
			q = fmt.Sprintf("%d queued, %d deferred", m.Queued, m.Deferred)
		}
		if m.Deferred > 0 {
			q = c.style("bad", q)
		}
		fmt.Fprintf(w, "\tmail\t%s -> %s, %s\n", m.Listen, m.Relay, q)
		if m.LastSent != "" {
			fmt.Fprintf(w, "\tmail sent\t%s\n", ago(m.LastSent))
		}
		if f := m.LastFailure; f != nil {
			fmt.Fprintf(w, "\tmail failure\t%s %s: %s\n", ago(f.Date), f.Status, c.style("bad", oneLine(f.Reason)))
		}
		if m.Error != "" {
			fmt.Fprintf(w, "\tmail error\t%s\n", c.style("bad", oneLine(m.Error)))
		}
	}
	if n := len(a.RecentFailed); n > 0 {
		f := a.RecentFailed[n-1]
		fmt.Fprintf(w, "\tlast failure\t%s %s: %s\n", f.Version, ago(f.FailDate), c.style("bad", oneLine(f.Reason)))
	}
}

// ago formats an RFC 3339 date as "3 min ago (2024-05-01 12:00:00 UTC)".
func ago(date string) string {
	t, err := time.Parse(time.RFC3339, date)
	if err != nil {
		return date
	}
	d := time.Since(t).Round(time.Second)
	var rel string
	switch {
	case d < time.Minute:
		rel = fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		rel = fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		rel = fmt.Sprintf("%d h ago", int(d.Hours()))
	default:
		rel = fmt.Sprintf("%d days ago", int(d.Hours()/24))
	}
	return rel + " (" + t.UTC().Format("2006-01-02 15:04:05 UTC") + ")"
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	return s
}
