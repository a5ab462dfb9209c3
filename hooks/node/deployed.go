package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jecloud/jecloud/internal/appspec"
	"github.com/jecloud/jecloud/internal/ports"
	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/jecloud/jecloud/internal/sysd"
)

// deployed writes the release's units and starts its processes. The web
// process runs behind the front door (proxied), unless the release asks
// for socket activation ([web] socket = true): then, like the other
// process types, its instances are restarted one at a time, each checked
// before the next. Then everything soaks. reuse: see proxied.
func (h *Hook) deployed(ctx context.Context, a *app, spec *appspec.Spec, varsFile string, reuse bool, log io.Writer) error {
	nodeBin := ""
	if spec.Node != nil {
		version, err := a.version()
		if err != nil {
			return fmt.Errorf("no pinned Node.js version in %s: the install phase did not run", a.versionFile())
		}
		nodeBin = a.runtimes().Bin(version)
	}
	var err error
	// The web process runs what spec.WebCommand says (`npm start` becomes
	// the start script itself with socket activation).
	processes := maps.Clone(spec.Processes)
	_, hasWeb := processes["web"]
	if hasWeb {
		if processes["web"], err = spec.WebCommand(); err != nil {
			return err
		}
	}
	socket := spec.Web.Socket()
	proxied := hasWeb && !socket && routes.Installed(state.Layout{Root: a.root})
	if hasWeb && !socket && !proxied {
		fmt.Fprintf(log, "the front door is not installed on this server (`jeagent init` installs it): web binds its ports.json port itself, and each restart refuses connections for a moment\n")
	}
	port := 0
	if hasWeb && !proxied {
		if port, err = ports.Allocate(a.root, a.dir, "web", a.settings.portBase()); err != nil {
			return err
		}
	}
	u := appUnits{
		App: a.name, Env: a.env, User: a.user, Root: a.root, AppDir: a.dir, ReleaseDir: a.release,
		NodeBin: nodeBin, Port: port, Socket: socket, Proxied: proxied,
		Processes: processes, VarsFile: varsFile, Grace: spec.GraceOf, Limits: spec.LimitsOf,
	}
	set := u.render()
	if proxied {
		// The socket mode's templates stay until its instances are
		// drained and stopped (proxied removes them).
		for _, t := range []string{u.serviceName("web"), u.socketName("web")} {
			if b, err := os.ReadFile(filepath.Join(h.UnitDir, t)); err == nil {
				set.files[t] = string(b)
			}
		}
	}
	changed, err := h.writeUnits(set)
	if err != nil {
		return err
	}
	sd, closeFn, err := sysd.OpenReloaded(ctx, changed)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := h.start(ctx, sd, a, u, spec, reuse, log); err != nil {
		return err
	}
	return h.serveStatic(ctx, a, spec, log)
}

// bus is a unitManager that can also reload systemd (sysd.Bus).
type bus interface {
	unitManager
	Reload(ctx context.Context) error
}

// start starts the processes of the release whose units are written.
func (h *Hook) start(ctx context.Context, sd bus, a *app, u appUnits, spec *appspec.Spec, reuse bool, log io.Writer) error {
	// Units named before issue #17 (jecloud-APP-ENV-TYPE@N) go: exactly this
	// app environment's. An app that binds its port itself needs the old
	// process gone first; with sockets the old one serves until the new
	// ones are up (both sockets bind the port with SO_REUSEPORT).
	legacy, err := h.legacyUnits(a)
	if err != nil {
		return err
	}
	if !u.Socket {
		if err := sysd.RetireLegacy(ctx, sd, h.UnitDir, legacy, log); err != nil {
			return err
		}
		legacy = nil
	}
	restarts := map[string]uint32{}
	if _, ok := spec.Processes["web"]; !ok {
		// A Procfile without web any more: the front door forgets the
		// instances once their requests are done.
		l := state.Layout{Root: a.root}
		cur, err := routes.ReadUpstreams(l, state.AppEnv{App: a.name, Env: a.env})
		if err != nil {
			return err
		}
		if len(cur.Web)+len(cur.Draining) > 0 && routes.Installed(l) {
			if _, err := h.proxied(ctx, sd, a, u, spec, 0, false, log); err != nil {
				return err
			}
		}
	}
	for _, typ := range spec.ProcessNames() {
		if len(a.only) > 0 && !slices.Contains(a.only, typ) {
			fmt.Fprintf(log, "%s: left running (a restart of %s only)\n", typ, strings.Join(a.only, ", "))
			continue
		}
		n := spec.Instances(typ)
		if typ == "web" && u.Proxied {
			routed, err := h.proxied(ctx, sd, a, u, spec, n, reuse, log)
			if err != nil {
				return err
			}
			maps.Copy(restarts, routed)
			continue
		}
		for i := 1; i <= n; i++ {
			svc := instance(u.serviceName(typ), i)
			enable := []string{svc}
			if typ == "web" && u.Socket {
				sock := instance(u.socketName(typ), i)
				enable = append(enable, sock)
				if err := sd.Start(ctx, sock); err != nil {
					return err
				}
			}
			if err := sd.Enable(ctx, enable); err != nil {
				return fmt.Errorf("enable %v: %w", enable, err)
			}
			fmt.Fprintf(log, "restarting %s\n", svc)
			if err := sd.Restart(ctx, svc); err != nil {
				return fmt.Errorf("%w\n%s", err, journalTail(svc))
			}
			if typ == "web" {
				if err := h.waitHealthy(ctx, sd, u.Port, spec.Web.Health, svc); err != nil {
					return err
				}
			}
			_, restarts[svc], _ = sd.State(ctx, svc)
		}
		if typ == "web" {
			if err := h.routeSocket(ctx, a, u.Port, log); err != nil {
				return err
			}
		}
		if err := scaleDown(ctx, sd, u, typ, n, log); err != nil {
			return err
		}
	}
	if err := h.stopRemovedTypes(ctx, sd, u, spec, log); err != nil {
		return err
	}
	if err := sysd.RetireLegacy(ctx, sd, h.UnitDir, legacy, log); err != nil {
		return err
	}
	if err := h.soak(ctx, sd, restarts, log); err != nil {
		return err
	}
	if spec.Instances("web") > 0 {
		if _, ok := spec.Processes["web"]; ok {
			if u.Proxied {
				fmt.Fprintf(log, "web is served by the front door (the proxy on port 80)\n")
			} else {
				fmt.Fprintf(log, "web is served on port %d of this server\n", u.Port)
			}
		}
	}
	return nil
}

// writeUnits writes the unit files that differ and removes this app's unit
// files that the release no longer has. It reports whether anything changed.
func (h *Hook) writeUnits(s unitSet) (bool, error) {
	changed := false
	for name, content := range s.files {
		c, err := sysd.WriteUnit(h.UnitDir, name, content)
		if err != nil {
			return false, err
		}
		changed = changed || c
	}
	entries, err := os.ReadDir(h.UnitDir)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		// Only process templates (NAME@.service, NAME@.socket) are this hook's:
		// other units of the app (its Redis) belong to other hooks.
		if strings.HasPrefix(e.Name(), s.prefix) && strings.Contains(e.Name(), "@.") && s.files[e.Name()] == "" && !e.IsDir() {
			if err := os.Remove(filepath.Join(h.UnitDir, e.Name())); err != nil {
				return false, err
			}
			changed = true
		}
	}
	return changed, nil
}

// legacyUnits lists the process templates that versions before issue #17
// wrote for this app environment (sysd.LegacyUnits: named
// jecloud-APP-ENV-TYPE@.service and described as APP/ENV's).
func (h *Hook) legacyUnits(a *app) ([]string, error) {
	all, err := sysd.LegacyUnits(h.UnitDir, a.name, a.env)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range all {
		if strings.Contains(f, "@.") {
			out = append(out, f)
		}
	}
	return out, nil
}

// unitManager is what the hook asks of systemd (sysd.Bus).
type unitManager interface {
	Enable(ctx context.Context, names []string) error
	Disable(ctx context.Context, names []string) error
	Start(ctx context.Context, name string) error
	Restart(ctx context.Context, name string) error
	Stop(ctx context.Context, name string) error
	// State returns the unit's ActiveState and its service's NRestarts.
	State(ctx context.Context, name string) (active string, restarts uint32, err error)
	// Units lists the loaded units whose names match the patterns.
	Units(ctx context.Context, patterns []string) ([]string, error)
}

// scaleDown stops and disables the instances of typ beyond n.
func scaleDown(ctx context.Context, sd unitManager, u appUnits, typ string, n int, log io.Writer) error {
	units, err := sd.Units(ctx, []string{u.prefix() + typ + "@*"})
	if err != nil {
		return err
	}
	for _, name := range units {
		i, ok := instanceNumber(name)
		if !ok || i <= n {
			continue
		}
		fmt.Fprintf(log, "stopping %s (scale %s=%d)\n", name, typ, n)
		if err := sd.Stop(ctx, name); err != nil {
			return err
		}
		if err := sd.Disable(ctx, []string{name}); err != nil {
			return err
		}
	}
	return nil
}

// stopRemovedTypes stops the instances of process types the release dropped.
func (h *Hook) stopRemovedTypes(ctx context.Context, sd unitManager, u appUnits, spec *appspec.Spec, log io.Writer) error {
	units, err := sd.Units(ctx, []string{u.prefix() + "*"})
	if err != nil {
		return err
	}
	for _, name := range units {
		typ, _, isProcess := strings.Cut(strings.TrimPrefix(name, u.prefix()), "@")
		if _, ok := spec.Processes[typ]; ok || !isProcess {
			continue
		}
		fmt.Fprintf(log, "stopping %s (no longer in the Procfile)\n", name)
		if err := sd.Stop(ctx, name); err != nil {
			return err
		}
		sd.Disable(ctx, []string{name})
	}
	return nil
}

func instanceNumber(unit string) (int, bool) {
	_, rest, ok := strings.Cut(unit, "@")
	if !ok {
		return 0, false
	}
	num, _, _ := strings.Cut(rest, ".")
	i, err := strconv.Atoi(num)
	return i, err == nil
}

// waitHealthy waits until the web port answers an HTTP request on a fresh
// connection: 2xx or 3xx on the health path if one is declared, else any
// answer below 500 on "/".
func (h *Hook) waitHealthy(ctx context.Context, sd unitManager, port int, path, svc string) error {
	strict := path != ""
	if path == "" {
		path = "/"
	}
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(h.HealthTimeout)
	_, restarts0, _ := sd.State(ctx, svc)
	var last string
	for time.Now().Before(deadline) {
		// A process that keeps dying will not answer: say so at once.
		if _, n, err := sd.State(ctx, svc); err == nil && n >= restarts0+3 {
			return fmt.Errorf("%s keeps exiting (restarted %d times while waiting for it to answer)\n%s", svc, n-restarts0, journalTail(svc))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 400 || !strict && resp.StatusCode < 500 {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer GET %s healthily within %s (last: %s)\n%s", svc, url, h.HealthTimeout, last, journalTail(svc))
}

// soak waits, then checks that every instance is still active and has not
// been restarted by systemd since it was started.
func (h *Hook) soak(ctx context.Context, sd unitManager, restarts map[string]uint32, log io.Writer) error {
	if len(restarts) == 0 || h.Soak <= 0 {
		return nil
	}
	fmt.Fprintf(log, "watching %d process(es) for %s\n", len(restarts), h.Soak)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(h.Soak):
	}
	names := make([]string, 0, len(restarts))
	for n := range restarts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		active, n, err := sd.State(ctx, name)
		if err != nil {
			return err
		}
		if active != "active" || n != restarts[name] {
			return fmt.Errorf("%s crashed after it started (state %s, restarted %d time(s))\n%s", name, active, n-restarts[name], journalTail(name))
		}
	}
	return nil
}

// journalTail returns the unit's last log lines, for a failure's reason.
func journalTail(unit string) string {
	out, err := exec.Command("journalctl", "-u", unit, "-n", "8", "--no-pager", "-o", "cat").Output()
	if err != nil {
		return ""
	}
	return "last lines of " + unit + ":\n" + string(bytes.TrimSpace(out))
}
