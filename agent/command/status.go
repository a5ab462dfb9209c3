package command

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/jecloud/jecloud/hooks/mail"
	"github.com/jecloud/jecloud/internal/appspec"
	"github.com/jecloud/jecloud/internal/backup"
	"github.com/jecloud/jecloud/internal/bytecount"
	"github.com/jecloud/jecloud/internal/names"
	"github.com/jecloud/jecloud/internal/plan"
	"github.com/jecloud/jecloud/internal/proxy"
	"github.com/jecloud/jecloud/internal/rollforward"
	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/urfave/cli/v2"
)

// appStatus is one app environment in `status --json`.
type appStatus struct {
	App            string `json:"app"`
	Env            string `json:"env"`
	CurrentVersion string `json:"current_version"`
	Live           string `json:"live"` // where versions/current points
	// NothingToRun: the live release has no process type and no static
	// site; it is unpacked, and nothing serves it.
	NothingToRun    bool                     `json:"nothing_to_run,omitempty"`
	Deployment      *state.Deployment        `json:"deployment"`
	RecentFailed    []state.Failure          `json:"recent_failed_deployments"`
	DeployedVersion []state.Deployed         `json:"deployed_versions"`
	Backoff         *state.Backoff           `json:"backoff"`
	Backups         map[string]*backupStatus `json:"backups"`
	// Mail is the environment's mail relay (hooks/mail), when it has one.
	Mail *mail.Status `json:"mail,omitempty"`
	// Git is set when pushes to a git branch deploy the environment.
	Git *state.Git `json:"git,omitempty"`
	// Domains and Maintenance are the front door's (docs/routing.md).
	Domains     []string `json:"domains,omitempty"`
	Maintenance bool     `json:"maintenance"`
	// Watch is the crash-loop watchdog on the release that last went live.
	Watch *state.Watch `json:"watch,omitempty"`
	// Certificates is the state of the certificate of each host name the
	// front door serves the environment at (docs/routing.md#tls).
	Certificates []proxy.Cert `json:"certificates,omitempty"`
	// Destroying is set while the environment is being destroyed
	// (`jeagent destroy`): nothing of it is live then, whatever is left.
	Destroying *state.Destroy `json:"destroying,omitempty"`
	Error      string         `json:"error"`
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show where every app environment stands",
		ArgsUsage: "[APP [ENV]]",
		Description: "Per app environment: the live version, a pending deployment and its step, recent\n" +
			"failures, a step that is backing off, and app.json files that do not parse.\n" +
			"With --follow APP ENV, streams the pending deployment until it ends (exit status as deploy --wait).\n" +
			"Exit status: 0; 1 when the root does not exist or an app.json does not parse; 3 when\n" +
			"the APP (ENV) asked for is not on this server (what was found is printed all the same).",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON for scripts"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "follow the pending deployment of APP ENV"},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Minute, Usage: "with --follow: give up following after `DURATION` (the deployment goes on)"},
		},
		Action: func(c *cli.Context) error {
			l := layout(c)
			if c.Bool("follow") {
				return followPending(c)
			}
			if c.NArg() > 2 {
				return fmt.Errorf("status: want at most APP ENV, got %d arguments", c.NArg())
			}
			if app := c.Args().Get(0); app != "" {
				if err := names.CheckApp(app); err != nil {
					return err
				}
			}
			if env := c.Args().Get(1); env != "" {
				if err := names.CheckEnv(env); err != nil {
					return err
				}
			}
			if _, err := os.Stat(l.Root); err != nil {
				return fmt.Errorf("no state tree at %s (%w): run `sudo jeagent init` on this server, or pass --root DIR (or JECLOUD_ROOT) if it is elsewhere", l.Root, err)
			}
			aes, err := l.AppEnvs()
			if err != nil {
				return err
			}
			var list []appStatus
			mr := mail.NewStatusReader()
			certs := certReader(c.Context, l)
			for _, ae := range aes {
				if (c.Args().Get(0) != "" && ae.App != c.Args().Get(0)) || (c.Args().Get(1) != "" && ae.Env != c.Args().Get(1)) {
					continue
				}
				s := readStatus(l, ae)
				s.Mail = mr.Status(c.Context, ae.App, ae.Env)
				if s.Error == "" && s.CurrentVersion != "" {
					s.Certificates = certs(hostsOf(l, ae))
				}
				list = append(list, s)
			}
			door := readDoor(l)
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				if err := enc.Encode(map[string]any{"apps": nonNil(list), "front_door": door}); err != nil {
					return err
				}
				return statusExit(l, c.Args().Get(0), c.Args().Get(1), list)
			}
			if len(list) == 0 {
				fmt.Fprintf(c.App.Writer, "no app environments under %s\n", l.Root)
			}
			for _, s := range list {
				printStatus(c.App.Writer, s)
			}
			printDoor(c.App.Writer, door)
			if rollforward.Locked(l) {
				fmt.Fprintf(c.App.Writer, "a roll-forward is running (pid %d)\n", rollforward.LockHolder(l))
			}
			return statusExit(l, c.Args().Get(0), c.Args().Get(1), list)
		},
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func nonNil(s []appStatus) []appStatus {
	if s == nil {
		return []appStatus{}
	}
	return s
}

func readStatus(l state.Layout, ae state.AppEnv) appStatus {
	s := appStatus{App: ae.App, Env: ae.Env}
	s.Live, _ = os.Readlink(l.Current(ae))
	var a state.App
	if err := state.Read(l.AppJSON(ae), &a); err != nil {
		s.Error = err.Error()
		return s
	}
	s.CurrentVersion, s.Deployment, s.Backoff = a.CurrentVersion, a.Deployment, a.Backoff
	if a.CurrentVersion != "" {
		s.NothingToRun = appspec.Outcome(l.Release(ae, a.CurrentVersion), "") != "is live"
	}
	s.RecentFailed, s.DeployedVersion = a.RecentFailedDeployments, a.DeployedVersions
	s.Backups = backupStatuses(l, ae, a)
	s.Git = a.Git
	s.Domains, s.Maintenance = a.Domains, a.Maintenance
	s.Watch = a.Watch
	if a.Destroy != nil {
		// Half destroyed is not live: nothing is reported as running.
		s.Destroying = a.Destroy
		s.CurrentVersion, s.Live, s.NothingToRun, s.Deployment, s.Watch = "", "", false, nil, nil
	}
	return s
}

// backupStatus is one service's backups in `status`.
type backupStatus struct {
	state.BackupRecord
	// Stale: backups are on and the last success is older than the
	// schedule allows (or there is none).
	Stale  bool   `json:"stale"`
	MaxAge string `json:"max_age,omitempty"`
}

// backupStatuses returns the backup records of app.json, and flags as stale
// those of the services the live release declares that are overdue.
func backupStatuses(l state.Layout, ae state.AppEnv, a state.App) map[string]*backupStatus {
	m := map[string]*backupStatus{}
	for name, r := range a.Backups {
		if r != nil {
			m[name] = &backupStatus{BackupRecord: *r}
		}
	}
	settings, err := backup.ReadSettings(l.Root)
	if err != nil {
		return m // off (or unreadable: status is not the place to fail)
	}
	spec, err := appspec.Read(l.Current(ae))
	if err != nil {
		return m
	}
	maxAge := settings.Stale()
	for name := range backupServices() {
		if _, declared := spec.Services[name]; !declared {
			continue
		}
		b := m[name]
		if b == nil {
			b = &backupStatus{}
			m[name] = b
		}
		b.MaxAge = maxAge.String()
		b.Stale = b.LastSuccess.IsZero() || time.Since(b.LastSuccess) > maxAge
	}
	return m
}

func printStatus(w io.Writer, s appStatus) {
	fmt.Fprintf(w, "%s/%s\n", s.App, s.Env)
	if s.Error != "" {
		fmt.Fprintf(w, "  error:      %s\n", s.Error)
		return
	}
	if d := s.Destroying; d != nil {
		fmt.Fprintf(w, "  destroying: since %s (%s); not live\n", d.RequestDate.Format(time.RFC3339), dataWord(d.Data))
		if b := s.Backoff; b != nil {
			fmt.Fprintf(w, "  backoff:    %s failed %d time(s), next try at %s: %s\n", b.Step, b.Failures, b.NextTry.Format(time.RFC3339), b.LastError)
		}
		return
	}
	live := s.CurrentVersion
	if live == "" {
		live = "(none)"
	}
	if n := len(s.DeployedVersion); n > 0 && s.DeployedVersion[n-1].Version == s.CurrentVersion {
		live += "  since " + s.DeployedVersion[n-1].Date.Format(time.RFC3339)
	}
	if s.NothingToRun {
		fmt.Fprintf(w, "  unpacked:   %s (no process types: nothing runs or is served; see docs/procfile.md)\n", live)
	} else {
		fmt.Fprintf(w, "  live:       %s\n", live)
	}
	if wd := s.Watch; wd != nil && wd.Version == s.CurrentVersion {
		fmt.Fprintf(w, "  watchdog:   %d restarts so far (more than %d rolls back to %s) until %s\n", wd.Restarts, wd.MaxRestarts, wd.Previous, wd.Until.Format(time.RFC3339))
	}
	if s.Maintenance {
		fmt.Fprintf(w, "  maintenance: ON: the front door answers 503 with the maintenance page (`maintenance:off` ends it)\n")
	}
	if len(s.Domains) > 0 {
		fmt.Fprintf(w, "  domains:    %s\n", strings.Join(s.Domains, " "))
	}
	if s.Live != s.CurrentVersion && s.Deployment == nil {
		fmt.Fprintf(w, "  note:       versions/current points at %q: the next roll-forward deploys current_version\n", s.Live)
	}
	if d := s.Deployment; d != nil {
		st := d.State
		if st == "" {
			st = state.StateRequested
		}
		fmt.Fprintf(w, "  deploying:  %s  step %s, requested %s\n", d.Version, st, d.RequestDate.Format(time.RFC3339))
	}
	if b := s.Backoff; b != nil {
		fmt.Fprintf(w, "  backoff:    %s failed %d time(s); next try %s; last error: %s\n", b.Step, b.Failures, b.NextTry.Format(time.RFC3339), b.LastError)
	}
	if g := s.Git; g != nil {
		line := "no push yet"
		if c := g.Requested; c != nil {
			line = fmt.Sprintf("last push %s (delivery %s, %s)", c.Commit[:min(12, len(c.Commit))], c.Delivery, c.Date.Format(time.RFC3339))
			if b := g.Built; b != nil && b.Commit == c.Commit {
				line += ", built as " + b.Version
			} else {
				line += ", not built yet"
			}
		}
		fmt.Fprintf(w, "  git:        branch %s of %s: %s\n", g.Branch, g.Repository, line)
	}
	for _, name := range sortedKeys(s.Backups) {
		b := s.Backups[name]
		line := "never"
		if !b.LastSuccess.IsZero() {
			line = fmt.Sprintf("%s (%s ago, %s)", b.LastSuccess.Format(time.RFC3339), time.Since(b.LastSuccess).Round(time.Minute), bytecount.Format(b.Size))
		}
		if b.Stale {
			line += "  STALE: older than " + b.MaxAge
		}
		if b.LastError != "" && b.LastAttempt.After(b.LastSuccess) {
			line += fmt.Sprintf("; last attempt %s failed: %s", b.LastAttempt.Format(time.RFC3339), b.LastError)
		}
		fmt.Fprintf(w, "  backup:     %-8s %s\n", name, line)
	}
	if m := s.Mail; m != nil {
		printMail(w, m)
	}
	for _, c := range s.Certificates {
		fmt.Fprintf(w, "  https:      %s  %s\n", c.Host, c)
	}
	n := len(s.RecentFailed)
	for i := max(0, n-3); i < n; i++ {
		f := s.RecentFailed[i]
		fmt.Fprintf(w, "  failed:     %s  %s: %s\n", f.Version, f.FailDate.Format(time.RFC3339), f.Reason)
	}
}

// printMail shows an environment's mail relay: where it listens and
// relays to, its queue, and its last delivery and failure.
func printMail(w io.Writer, m *mail.Status) {
	fmt.Fprintf(w, "  mail:       %s -> %s\n", m.Listen, m.Relay)
	q := "empty"
	if m.Queued > 0 {
		q = fmt.Sprintf("%d message(s), %d deferred", m.Queued, m.Deferred)
		if m.Oldest != nil {
			q += fmt.Sprintf(", oldest since %s (%s ago)", m.Oldest.Format(time.RFC3339), time.Since(*m.Oldest).Round(time.Second))
		}
	}
	if m.Deferred > 0 {
		q += "  DEFERRED: the provider is not taking them; Postfix retries (postqueue -f retries now)"
	}
	fmt.Fprintf(w, "  mail queue: %s\n", q)
	if m.LastSent != nil {
		fmt.Fprintf(w, "  mail sent:  last %s (%s ago)\n", m.LastSent.Format(time.RFC3339), time.Since(*m.LastSent).Round(time.Second))
	}
	if f := m.LastFailure; f != nil {
		fmt.Fprintf(w, "  mail FAIL:  %s %s: %s\n", f.Date.Format(time.RFC3339), f.Status, f.Reason)
	}
	if m.Error != "" {
		fmt.Fprintf(w, "  mail error: %s\n", m.Error)
	}
}

// followPending follows the pending deployment of APP ENV.
func followPending(c *cli.Context) error {
	ae, err := appEnvArgs(c, 2, 2)
	if err != nil {
		return err
	}
	l := layout(c)
	from := rollforward.LogSize(l)
	var a state.App
	if err := state.Read(l.AppJSON(ae), &a); err != nil {
		return err
	}
	if phase := os.Getenv("JECLOUD_PHASE"); phase != "" && a.Deployment != nil {
		// Called from a hook: the deployment waits for that hook to end.
		fmt.Fprintf(c.App.Writer, "%s: called from a %s hook: not following %s, which waits for this hook\n", ae, phase, a.Deployment.Version)
		return nil
	}
	if a.Deployment == nil {
		if n := len(a.RecentFailedDeployments); n > 0 && a.RecentFailedDeployments[n-1].Version != a.CurrentVersion {
			f := a.RecentFailedDeployments[n-1]
			if len(a.DeployedVersions) == 0 || a.DeployedVersions[len(a.DeployedVersions)-1].Date.Before(f.FailDate) {
				return fmt.Errorf("deploy of %s failed: %s", f.Version, f.Reason)
			}
		}
		fmt.Fprintf(c.App.Writer, "%s: no deployment pending; %s %s\n", ae, a.CurrentVersion, appspec.Outcome(l.Release(ae, a.CurrentVersion), ""))
		return nil
	}
	return follow(c, ae, a.Deployment.Version, a.Deployment.RequestDate, from, nil)
}

// doorStatus is the front door in `status --json` (docs/routing.md).
type doorStatus struct {
	Installed bool `json:"installed"`
	// Error is why the last configuration was not loaded (the proxy's own
	// reason), while the route step backs off; the running one stays.
	Error   string    `json:"error,omitempty"`
	NextTry time.Time `json:"next_try,omitzero"`
}

func readDoor(l state.Layout) doorStatus {
	d := doorStatus{Installed: routes.Installed(l)}
	var s state.Server
	if state.Read(l.ServerJSON(), &s) == nil && s.Backoff != nil && s.Backoff.Step == plan.Route {
		d.Error, d.NextTry = s.Backoff.LastError, s.Backoff.NextTry
	}
	return d
}

func printDoor(w io.Writer, d doorStatus) {
	if !d.Installed {
		return
	}
	if d.Error != "" {
		fmt.Fprintf(w, "front door: kept its running configuration: %s (next try %s)\n", d.Error, d.NextTry.Format(time.RFC3339))
	}
}

// statusExit is status's exit status once it printed list: an app.json
// that does not parse is an error (1), and so is an app environment asked
// for that is not here (3, as `has` says a version is not here).
func statusExit(l state.Layout, app, env string, list []appStatus) error {
	bad := 0
	for _, s := range list {
		if s.Error != "" {
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d app.json file(s) under %s do not parse (see error: above): fix or restore them", bad, l.Root)
	}
	if app != "" && len(list) == 0 {
		what := app
		if env != "" {
			what += "/" + env
		}
		return &exitError{3, fmt.Errorf("no app environment %s under %s: `jeagent status` lists those there are", what, l.Root)}
	}
	return nil
}

// certReader returns the certificates of host names (an app
// environment's domains and default name, hostsOf), reading the front
// door's journal once, on first use. Nothing where the front door is not
// installed.
func certReader(ctx context.Context, l state.Layout) func(hosts []string) []proxy.Cert {
	var log []byte
	read := false
	return func(hosts []string) []proxy.Cert {
		if !routes.Installed(l) || len(hosts) == 0 {
			return nil
		}
		if !read {
			read = true
			if r, err := proxy.TLSLog(ctx); err == nil {
				log, _ = io.ReadAll(r)
			}
		}
		return proxy.Certificates(routes.StorageDir, hosts, bytes.NewReader(log))
	}
}

// hostCertificates returns the certificate of each of hosts, by host
// name, for `jeagent domains` (its certificateStates: a proxy.Cert prints
// as one line with %v and as an object in JSON).
func hostCertificates(ctx context.Context, l state.Layout, hosts []string) map[string]any {
	m := map[string]any{}
	for _, c := range certReader(ctx, l)(hosts) {
		m[c.Host] = c
	}
	return m
}
