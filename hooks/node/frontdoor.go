package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jecloud/jecloud/internal/appspec"
	"github.com/jecloud/jecloud/internal/ports"
	"github.com/jecloud/jecloud/internal/proxy"
	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/jecloud/jecloud/internal/sysd"
)

// frontDoor is what the hook asks of the server's proxy (proxy.Default):
// render its configuration from /var/cloud (upstreams.json included) and
// load it; count the requests in flight per upstream ("127.0.0.1:PORT").
type frontDoor interface {
	Apply(ctx context.Context, l state.Layout) (notes []string, err error)
	InFlight(ctx context.Context) (map[string]int, error)
}

// defaultFrontDoor is proxy.Default, once it has the methods frontDoor needs.
func defaultFrontDoor() frontDoor {
	if f, ok := any(proxy.Default).(frontDoor); ok {
		return f
	}
	return nil
}

// InstancePorts is the default range of the web instances' ports behind
// the proxy (server.json's node.instance_ports sets another): below Linux's ephemeral ports (32768 and up), so an outgoing
// connection never holds one, and above the ports.json ports (5000 up).
var InstancePorts = [2]int{10000, 19999}

// minInstancePort tells a web instance named by its port (proxy mode)
// from one named by its number (socket mode, 1 to 64).
const minInstancePort = 1024

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

func portOf(a string) (int, bool) {
	_, p, err := net.SplitHostPort(a)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(p)
	return n, err == nil
}

// portFree reports whether nothing listens on the port (on any address:
// a listener on 0.0.0.0 or [::] makes this bind fail too).
func portFree(port int) bool {
	l, err := net.Listen("tcp", addr(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// pickPorts returns n ports for new web instances: from the hook's range,
// none recorded in any app environment's ports.json or upstreams.json
// under root, none named by a web instance's unit file in the unit
// directory, none in taken, none bound now.
func (h *Hook) pickPorts(root string, s settings, n int, taken map[int]bool) ([]int, error) {
	used := map[int]bool{}
	for p := range taken {
		used[p] = true
	}
	files, _ := filepath.Glob(filepath.Join(root, "*", "*", ports.FileName))
	for _, f := range files {
		m := map[string]int{}
		if state.Read(f, &m) == nil {
			for _, p := range m {
				used[p] = true
			}
		}
	}
	ups, _ := filepath.Glob(filepath.Join(root, "*", "*", routes.UpstreamsFile))
	for _, f := range ups {
		env := filepath.Dir(f)
		u, err := routes.ReadUpstreams(state.Layout{Root: root}, state.AppEnv{App: filepath.Base(filepath.Dir(env)), Env: filepath.Base(env)})
		if err != nil {
			return nil, err
		}
		for _, a := range append(u.Web, u.Draining...) {
			if p, ok := portOf(a); ok {
				used[p] = true
			}
		}
	}
	units, _ := filepath.Glob(filepath.Join(h.UnitDir, "jecloud-*_web@*.service"))
	for _, f := range units {
		if p, ok := instanceNumber(filepath.Base(f)); ok {
			used[p] = true
		}
	}
	lo, hi, err := s.instancePorts()
	if err != nil {
		return nil, err
	}
	if h.InstancePorts[0] > 0 {
		lo, hi = h.InstancePorts[0], h.InstancePorts[1]
	}
	free := h.PortFree
	if free == nil {
		free = portFree
	}
	var out []int
	for p := lo; p <= hi && len(out) < n; p++ {
		if !used[p] && free(p) {
			out = append(out, p)
		}
	}
	if len(out) < n {
		return nil, fmt.Errorf("no free port for %d web instance(s) in %d-%d (recorded in ports.json, upstreams.json or bound): stop what holds them, or give node.instance_ports in server.json", n, lo, hi)
	}
	return out, nil
}

// proxied deploys the web process behind the front door: the release's
// instances start on fresh ports beside the old ones, each must answer
// its health check on its own port, then the proxy sends new requests to
// them (upstreams.json: Web new, Draining old) while the old ones finish
// theirs (at most the web type's grace), then the old ones are stopped
// and the proxy forgets them. A new instance that fails is stopped before
// any request reaches it; upstreams.json and the proxy are left as they
// were. reuse allows keeping a routed instance whose unit file is exactly
// the one this release would get (the engine's rollback redeploys the
// release that is still routed). It returns the web instances now routed
// (unit name -> NRestarts) for the soak.
func (h *Hook) proxied(ctx context.Context, sd bus, a *app, u appUnits, spec *appspec.Spec, n int, reuse bool, log io.Writer) (map[string]uint32, error) {
	if h.Proxy == nil {
		return nil, errors.New(proxy.ErrNotRunning.Error() + " (this jeagent has no front door client)")
	}
	l := state.Layout{Root: a.root}
	ae := state.AppEnv{App: a.name, Env: a.env}
	cur, err := routes.ReadUpstreams(l, ae)
	if err != nil {
		return nil, err
	}
	// Instances of the socket mode (web@N, N < 1024), or of the releases
	// before the proxy, serve on the app environment's ports.json port:
	// they are drained through it like any other.
	loaded, err := sd.Units(ctx, []string{u.prefix() + "web@*"})
	if err != nil {
		return nil, err
	}
	var legacy, oldProxied []string
	for _, name := range loaded {
		i, ok := instanceNumber(name)
		switch {
		case !ok:
		case i < minInstancePort:
			legacy = append(legacy, name)
		case strings.HasSuffix(name, ".service"):
			oldProxied = append(oldProxied, name)
		}
	}
	var draining []string
	for _, x := range append(append([]string(nil), cur.Web...), cur.Draining...) {
		if !slices.Contains(draining, x) {
			draining = append(draining, x)
		}
	}
	if len(legacy) > 0 {
		if p, err := ports.Lookup(a.dir, "web"); err == nil && !slices.Contains(draining, addr(p)) {
			draining = append(draining, addr(p))
		}
	}

	// Routed instances that already run exactly this release stay.
	var web []string
	routed := map[string]uint32{}
	if reuse {
		for _, x := range cur.Web {
			p, ok := portOf(x)
			if !ok || len(web) >= n {
				continue
			}
			svc := instance(u.serviceName("web"), p)
			want := serialize(u.withPort(p).service("web"))
			have, err := os.ReadFile(filepath.Join(h.UnitDir, svc))
			if err != nil || string(have) != want {
				continue
			}
			if active, restarts, err := sd.State(ctx, svc); err == nil && active == "active" {
				web = append(web, x)
				routed[svc] = restarts
				fmt.Fprintf(log, "%s already runs this release on %s: it stays\n", svc, x)
			}
		}
	}

	// New instances, each checked on its own port before any request.
	taken := map[int]bool{}
	for _, x := range draining {
		if p, ok := portOf(x); ok {
			taken[p] = true
		}
	}
	fresh, err := h.pickPorts(a.root, a.settings, n-len(web), taken)
	if err != nil {
		return nil, err
	}
	var started []string
	undo := func() {
		for _, svc := range started {
			h.removeInstance(ctx, sd, svc, io.Discard)
		}
		sd.Reload(ctx)
	}
	for _, p := range fresh {
		svc := instance(u.serviceName("web"), p)
		if _, err := sysd.WriteUnit(h.UnitDir, svc, serialize(u.withPort(p).service("web"))); err != nil {
			undo()
			return nil, err
		}
		started = append(started, svc)
		if err := sd.Reload(ctx); err != nil {
			undo()
			return nil, fmt.Errorf("systemctl daemon-reload: %w", err)
		}
		fmt.Fprintf(log, "starting %s on %s\n", svc, addr(p))
		if err := sd.Enable(ctx, []string{svc}); err != nil {
			undo()
			return nil, fmt.Errorf("enable %s: %w", svc, err)
		}
		if err := sd.Start(ctx, svc); err != nil {
			err = fmt.Errorf("%w\n%s", err, journalTail(svc))
			undo()
			return nil, err
		}
		if err := h.waitHealthy(ctx, sd, p, spec.Web.Health, svc); err != nil {
			undo()
			return nil, fmt.Errorf("%w\nthe release received no request: the live one keeps serving", err)
		}
		_, routed[svc], _ = sd.State(ctx, svc)
		web = append(web, addr(p))
	}
	var drain []string
	for _, x := range draining {
		if !slices.Contains(web, x) {
			drain = append(drain, x)
		}
	}

	// The switch.
	if !slices.Equal(web, cur.Web) || len(drain) > 0 {
		if err := routes.WriteUpstreams(l, ae, routes.Upstreams{Web: web, Draining: drain}); err != nil {
			undo()
			return nil, err
		}
		if err := h.apply(ctx, l, log); err != nil {
			routes.WriteUpstreams(l, ae, cur)
			undo()
			return nil, fmt.Errorf("the front door refused the new upstreams (the old ones keep serving): %w", err)
		}
		if len(web) > 0 {
			fmt.Fprintf(log, "the front door sends web requests to %s\n", strings.Join(web, ", "))
		}
	}
	if len(drain) > 0 {
		h.drain(ctx, drain, spec.GraceOf("web"), log)
	}

	// The old instances go (SIGTERM, then SIGKILL after the grace).
	keep := map[string]bool{}
	for _, x := range web {
		if p, ok := portOf(x); ok {
			keep[instance(u.serviceName("web"), p)] = true
		}
	}
	for _, svc := range oldProxied {
		if !keep[svc] {
			h.removeInstance(ctx, sd, svc, log)
		}
	}
	// Instance files left by an interrupted deploy.
	files, _ := filepath.Glob(filepath.Join(h.UnitDir, u.prefix()+"web@*.service"))
	for _, f := range files {
		if i, ok := instanceNumber(filepath.Base(f)); ok && i >= minInstancePort && !keep[filepath.Base(f)] {
			h.removeInstance(ctx, sd, filepath.Base(f), io.Discard)
		}
	}
	for _, name := range legacy {
		fmt.Fprintf(log, "stopping %s (the web process is behind the front door now)\n", name)
		if err := sd.Stop(ctx, name); err != nil {
			return nil, err
		}
		sd.Disable(ctx, []string{name}) // its template may be gone: links below
		for _, w := range []string{"multi-user.target.wants", "sockets.target.wants"} {
			os.Remove(filepath.Join(h.UnitDir, w, name))
		}
	}
	for _, t := range []string{u.serviceName("web"), u.socketName("web")} {
		os.Remove(filepath.Join(h.UnitDir, t))
	}
	if err := sd.Reload(ctx); err != nil {
		return nil, fmt.Errorf("systemctl daemon-reload: %w", err)
	}
	if len(drain) > 0 {
		if err := routes.WriteUpstreams(l, ae, routes.Upstreams{Web: web}); err != nil {
			return nil, err
		}
		if err := h.apply(ctx, l, log); err != nil {
			return nil, fmt.Errorf("the front door refused to forget the old instances %v (the new ones serve): %w", drain, err)
		}
	}
	return routed, nil
}

// apply loads the proxy's configuration rendered from l, and logs its notes.
func (h *Hook) apply(ctx context.Context, l state.Layout, log io.Writer) error {
	notes, err := h.Proxy.Apply(ctx, l)
	for _, n := range notes {
		fmt.Fprintf(log, "front door: %s\n", n)
	}
	return err
}

// routeSocket points the front door at the web port of ports.json (socket
// activation, or no front door), if upstreams.json says otherwise (the app
// environment was behind the proxy in proxy mode before).
func (h *Hook) routeSocket(ctx context.Context, a *app, port int, log io.Writer) error {
	l := state.Layout{Root: a.root}
	if !routes.Installed(l) {
		return nil
	}
	ae := state.AppEnv{App: a.name, Env: a.env}
	cur, err := routes.ReadUpstreams(l, ae)
	if err != nil {
		return err
	}
	want := []string{addr(port)}
	if len(cur.Web)+len(cur.Draining) == 0 || slices.Equal(cur.Web, want) && len(cur.Draining) == 0 {
		return nil // routes.EnvOf falls back to ports.json's port
	}
	if err := routes.WriteUpstreams(l, ae, routes.Upstreams{Web: want}); err != nil {
		return err
	}
	if h.Proxy == nil {
		return nil
	}
	return h.apply(ctx, l, log)
}

// drain waits until the proxy has no request in flight to the given
// upstreams, at most grace.
func (h *Hook) drain(ctx context.Context, upstreams []string, grace time.Duration, log io.Writer) {
	poll := h.DrainPoll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	start := time.Now()
	deadline := start.Add(grace)
	left := -1
	for {
		m, err := h.Proxy.InFlight(ctx)
		if err == nil {
			left = 0
			for _, x := range upstreams {
				left += m[x]
			}
			if left == 0 {
				fmt.Fprintf(log, "%s drained in %s\n", strings.Join(upstreams, ", "), time.Since(start).Round(time.Millisecond))
				return
			}
		}
		if !time.Now().Before(deadline) {
			if err != nil {
				fmt.Fprintf(log, "the front door does not say what %s still serve (%v): stopping them after %s\n", strings.Join(upstreams, ", "), err, grace)
			} else {
				fmt.Fprintf(log, "%d request(s) still in flight to %s after %s ([grace] web): stopping them anyway\n", left, strings.Join(upstreams, ", "), grace)
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(poll):
		}
	}
}

// removeInstance stops and disables a web instance of the proxy mode and
// removes its unit file.
func (h *Hook) removeInstance(ctx context.Context, sd bus, svc string, log io.Writer) {
	fmt.Fprintf(log, "stopping %s\n", svc)
	sd.Stop(ctx, svc)
	sd.Disable(ctx, []string{svc})
	os.Remove(filepath.Join(h.UnitDir, svc))
}

// withPort is u for the web instance on port p.
func (a appUnits) withPort(p int) appUnits {
	a.Port = p
	return a
}
