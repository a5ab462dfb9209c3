package node

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/appspec"
	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
)

// fakeBus is a systemd whose web instances of the proxy mode really serve
// HTTP on their port (127.0.0.1:PORT), unless their unit file names a
// release in bad: those start and never answer.
type fakeBus struct {
	t       *testing.T
	unitDir string
	bad     map[string]bool // release dir base names whose web never answers
	mu      sync.Mutex
	active  map[string]*http.Server // unit -> its server (nil: no server)
	log     []string                // "start UNIT", "stop UNIT", "restart UNIT"
}

func newFakeBus(t *testing.T, unitDir string) *fakeBus {
	b := &fakeBus{t: t, unitDir: unitDir, bad: map[string]bool{}, active: map[string]*http.Server{}}
	t.Cleanup(func() {
		for _, s := range b.active {
			if s != nil {
				s.Close()
			}
		}
	})
	return b
}

func (b *fakeBus) Reload(context.Context) error                   { return nil }
func (b *fakeBus) Enable(context.Context, []string) error         { return nil }
func (b *fakeBus) Disable(context.Context, []string) error        { return nil }
func (b *fakeBus) Restart(ctx context.Context, name string) error { return b.Start(ctx, name) }
func (b *fakeBus) Start(_ context.Context, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.log = append(b.log, "start "+name)
	if s := b.active[name]; s != nil {
		s.Close()
	}
	b.active[name] = nil
	p, ok := instanceNumber(name)
	if !ok || p < minInstancePort {
		return nil
	}
	unit, err := os.ReadFile(filepath.Join(b.unitDir, name))
	if err != nil {
		return fmt.Errorf("unit %s not found", name)
	}
	release := ""
	for _, l := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(l, "WorkingDirectory="); ok {
			release = filepath.Base(v)
		}
	}
	if !strings.Contains(string(unit), fmt.Sprintf(`Environment="PORT=%d"`, p)) {
		b.t.Errorf("%s lacks PORT=%d:\n%s", name, p, unit)
	}
	if b.bad[release] {
		return nil
	}
	l, err := net.Listen("tcp", addr(p))
	if err != nil {
		return err
	}
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, release) })}
	go s.Serve(l)
	b.active[name] = s
	return nil
}
func (b *fakeBus) Stop(_ context.Context, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.log = append(b.log, "stop "+name)
	if s := b.active[name]; s != nil {
		s.Close()
	}
	delete(b.active, name)
	return nil
}
func (b *fakeBus) State(_ context.Context, name string) (string, uint32, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.active[name]; ok {
		return "active", 0, nil
	}
	return "inactive", 0, nil
}
func (b *fakeBus) Units(_ context.Context, patterns []string) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for u := range b.active {
		for _, p := range patterns {
			if ok, _ := path.Match(p, u); ok {
				out = append(out, u)
				break
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

func (b *fakeBus) started() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range b.log {
		if n, ok := strings.CutPrefix(l, "start "); ok {
			out = append(out, n)
		}
	}
	return out
}

// fakeDoor is a proxy that records the upstreams.json of each Apply and
// reports requests in flight from inFlight.
type fakeDoor struct {
	ae       state.AppEnv
	applied  []routes.Upstreams
	inFlight func(upstream string) int
	refuse   error
}

func (f *fakeDoor) Apply(_ context.Context, l state.Layout) ([]string, error) {
	if f.refuse != nil {
		return nil, f.refuse
	}
	u, err := routes.ReadUpstreams(l, f.ae)
	if err != nil {
		return nil, err
	}
	f.applied = append(f.applied, u)
	return nil, nil
}

func (f *fakeDoor) InFlight(context.Context) (map[string]int, error) {
	if f.inFlight == nil {
		return map[string]int{}, nil
	}
	return inflightMap{f.inFlight}.all(), nil
}

type inflightMap struct{ fn func(string) int }

// all asks fn about every loopback port the test may use.
func (m inflightMap) all() map[string]int {
	out := map[string]int{}
	for _, p := range testPorts {
		if n := m.fn(addr(p)); n > 0 {
			out[addr(p)] = n
		}
	}
	out["127.0.0.1:5000"] = m.fn("127.0.0.1:5000")
	return out
}

var testPorts []int

// rig is one app environment, shop/prod, deployed by the hook with a
// fake systemd and a fake front door.
type rig struct {
	t    *testing.T
	h    *Hook
	a    *app
	sd   *fakeBus
	door *fakeDoor
	l    state.Layout
	ae   state.AppEnv
}

func newRig(t *testing.T) *rig {
	root := t.TempDir()
	unitDir := filepath.Join(t.TempDir(), "system")
	os.MkdirAll(unitDir, 0o755)
	dir := filepath.Join(root, "shop", "prod")
	os.MkdirAll(dir, 0o755)
	// A block of ports nothing listens on (the kernel gave the first one).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p0 := l.Addr().(*net.TCPAddr).Port
	l.Close()
	if p0 > 65000 {
		p0 = 40000
	}
	testPorts = nil
	for p := p0; p < p0+20; p++ {
		testPorts = append(testPorts, p)
	}
	ae := state.AppEnv{App: "shop", Env: "prod"}
	r := &rig{t: t, l: state.Layout{Root: root}, ae: ae, sd: newFakeBus(t, unitDir), door: &fakeDoor{ae: ae}}
	r.h = &Hook{UnitDir: unitDir, HealthTimeout: 2 * time.Second, Proxy: r.door, InstancePorts: [2]int{p0, p0 + 19}, DrainPoll: 10 * time.Millisecond}
	r.a = &app{root: root, name: "shop", env: "prod", dir: dir, user: "jc-shop_prod"}
	return r
}

// deploy runs the deployed phase's process part for release (a version
// name) with the given spec.
func (r *rig) deploy(release string, spec *appspec.Spec, reuse bool) (string, error) {
	r.a.release = filepath.Join(r.a.dir, "source", "versions", release)
	if spec == nil {
		spec = &appspec.Spec{Processes: map[string]string{"web": "node server.js"}}
	}
	u := appUnits{App: r.a.name, Env: r.a.env, User: r.a.user, Root: r.a.root, AppDir: r.a.dir, ReleaseDir: r.a.release,
		NodeBin: "/var/cloud/sys/runtimes/node/20.11.1/bin", Socket: spec.Web.Socket(), Proxied: !spec.Web.Socket(), Processes: spec.Processes, Grace: spec.GraceOf, Limits: spec.LimitsOf}
	if _, err := r.h.writeUnits(u.render()); err != nil {
		return "", err
	}
	var log strings.Builder
	err := r.h.start(context.Background(), r.sd, r.a, u, spec, reuse, &log)
	return log.String(), err
}

func (r *rig) upstreams() routes.Upstreams {
	u, err := routes.ReadUpstreams(r.l, r.ae)
	if err != nil {
		r.t.Fatal(err)
	}
	return u
}

// get asks each routed instance what it serves.
func (r *rig) serving() []string {
	var out []string
	for _, a := range r.upstreams().Web {
		resp, err := http.Get("http://" + a + "/")
		if err != nil {
			out = append(out, "error: "+err.Error())
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = append(out, string(b))
	}
	return out
}

func TestProxiedDeploy(t *testing.T) {
	r := newRig(t)
	log, err := r.deploy("v1", nil, true)
	if err != nil {
		t.Fatalf("first deploy: %v\n%s", err, log)
	}
	u1 := r.upstreams()
	if len(u1.Web) != 1 || len(u1.Draining) != 0 || !slices.Equal(r.serving(), []string{"v1"}) {
		t.Fatalf("after v1: %+v serving %v", u1, r.serving())
	}
	if _, err := os.Stat(filepath.Join(r.h.UnitDir, "jecloud-shop_prod_web@.service")); !os.IsNotExist(err) {
		t.Errorf("a web template behind the front door: %v", err)
	}
	if len(r.door.applied) != 1 {
		t.Fatalf("first deploy applied %d times: %+v", len(r.door.applied), r.door.applied)
	}
	if !strings.Contains(log, "served by the front door") || strings.Contains(log, "port 5000") {
		t.Errorf("log:\n%s", log)
	}

	// v2 with two instances: both checked, then the switch, the drain, the stop.
	two := &appspec.Spec{Processes: map[string]string{"web": "node server.js"}, Scale: map[string]int{"web": 2}}
	r.door.applied = nil
	log, err = r.deploy("v2", two, true)
	if err != nil {
		t.Fatalf("v2: %v\n%s", err, log)
	}
	u2 := r.upstreams()
	if len(r.door.applied) != 2 {
		t.Fatalf("v2 applied %+v", r.door.applied)
	}
	sw, end := r.door.applied[0], r.door.applied[1]
	if len(sw.Web) != 2 || !slices.Equal(sw.Draining, u1.Web) || slices.Contains(sw.Web, u1.Web[0]) {
		t.Errorf("the switch: %+v (v1 on %v)", sw, u1.Web)
	}
	if !slices.Equal(end.Web, sw.Web) || len(end.Draining) != 0 || !slices.Equal(u2.Web, sw.Web) {
		t.Errorf("after the drain: %+v, file %+v", end, u2)
	}
	if got := r.serving(); !slices.Equal(got, []string{"v2", "v2"}) {
		t.Errorf("serving %v", got)
	}
	p1, _ := portOf(u1.Web[0])
	old := instance("jecloud-shop_prod_web@.service", p1)
	if st, _, _ := r.sd.State(context.Background(), old); st != "inactive" {
		t.Errorf("%s is %s", old, st)
	}
	if _, err := os.Stat(filepath.Join(r.h.UnitDir, old)); !os.IsNotExist(err) {
		t.Errorf("%s's unit file stays: %v", old, err)
	}
	if !strings.Contains(log, u1.Web[0]+" drained in") {
		t.Errorf("log:\n%s", log)
	}

	// v3 never answers: stopped, never routed, the deployment fails.
	r.sd.bad["v3"] = true
	r.door.applied = nil
	before := r.sd.started()
	log, err = r.deploy("v3", two, true)
	if err == nil || !strings.Contains(err.Error(), "did not answer") || !strings.Contains(err.Error(), "received no request") {
		t.Fatalf("v3: %v\n%s", err, log)
	}
	if len(r.door.applied) != 0 || !slices.Equal(r.upstreams().Web, u2.Web) || len(r.upstreams().Draining) != 0 {
		t.Errorf("a failed release touched the routing: applied %+v, file %+v", r.door.applied, r.upstreams())
	}
	if got := r.serving(); !slices.Equal(got, []string{"v2", "v2"}) {
		t.Errorf("after v3 failed, serving %v", got)
	}
	newUnits := r.sd.started()[len(before):]
	if len(newUnits) != 1 {
		t.Errorf("v3 started %v; want its first instance only", newUnits)
	}
	for _, n := range newUnits {
		if st, _, _ := r.sd.State(context.Background(), n); st != "inactive" {
			t.Errorf("failed instance %s is %s", n, st)
		}
		if _, err := os.Stat(filepath.Join(r.h.UnitDir, n)); !os.IsNotExist(err) {
			t.Errorf("failed instance %s's unit file stays", n)
		}
	}

	// The engine's rollback redeploys v2 (Version v2, PreviousVersion v3):
	// its routed instances stay as they are, no start, no apply.
	before = r.sd.started()
	log, err = r.deploy("v2", two, true)
	if err != nil {
		t.Fatalf("rollback to v2: %v\n%s", err, log)
	}
	if got := r.sd.started()[len(before):]; len(got) != 0 || len(r.door.applied) != 0 {
		t.Errorf("the rollback restarted %v, applied %+v\n%s", got, r.door.applied, log)
	}
	if !slices.Equal(r.upstreams().Web, u2.Web) || !slices.Equal(r.serving(), []string{"v2", "v2"}) {
		t.Errorf("after the rollback: %+v serving %v", r.upstreams(), r.serving())
	}

	// A restart of the live version (reuse false) starts fresh instances.
	log, err = r.deploy("v2", two, false)
	if err != nil {
		t.Fatal(err)
	}
	if u := r.upstreams(); len(u.Web) != 2 || slices.Contains(u.Web, u2.Web[0]) || slices.Contains(u.Web, u2.Web[1]) {
		t.Errorf("a restart kept %v: %+v\n%s", u2.Web, u, log)
	}
}

// TestWebRemoved: a release without a web process takes the old web
// instances out of the front door, then stops them.
func TestWebRemoved(t *testing.T) {
	r := newRig(t)
	os.MkdirAll(routes.Dir(r.l), 0o755) // the front door is installed
	if _, err := r.deploy("v1", nil, true); err != nil {
		t.Fatal(err)
	}
	old := r.upstreams().Web
	log, err := r.deploy("v2", &appspec.Spec{Processes: map[string]string{"worker": "node w.js"}}, true)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if u := r.upstreams(); len(u.Web)+len(u.Draining) != 0 || len(r.door.applied) != 3 || !slices.Equal(r.door.applied[1].Draining, old) {
		t.Errorf("upstreams %+v, applied %+v", u, r.door.applied)
	}
	if units, _ := r.sd.Units(context.Background(), []string{"jecloud-shop_prod_web@*"}); len(units) != 0 {
		t.Errorf("web instances left: %v", units)
	}
}

// TestDrain: the old instances are stopped once the proxy has no request
// in flight to them, or after [grace] web at most.
func TestDrain(t *testing.T) {
	for _, tc := range []struct {
		name      string
		busyFor   time.Duration // the old instance has a request in flight that long
		grace     time.Duration
		wantAtMin time.Duration
		wantLog   string
	}{
		{"idle", 0, time.Second, 0, "drained in"},
		{"busy 300ms", 300 * time.Millisecond, 5 * time.Second, 300 * time.Millisecond, "drained in"},
		{"never done", time.Hour, 400 * time.Millisecond, 400 * time.Millisecond, "1 request(s) still in flight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			spec := &appspec.Spec{Processes: map[string]string{"web": "node server.js"}, Grace: map[string]time.Duration{"web": tc.grace}}
			if _, err := r.deploy("v1", spec, true); err != nil {
				t.Fatal(err)
			}
			old := r.upstreams().Web[0]
			var switched time.Time
			r.door.inFlight = func(a string) int {
				if a != old {
					return 0
				}
				if switched.IsZero() {
					switched = time.Now()
				}
				if time.Since(switched) < tc.busyFor {
					return 1
				}
				return 0
			}
			start := time.Now()
			log, err := r.deploy("v2", spec, true)
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			if took < tc.wantAtMin || took > tc.wantAtMin+3*time.Second || !strings.Contains(log, tc.wantLog) {
				t.Errorf("took %s (want at least %s), log:\n%s", took, tc.wantAtMin, log)
			}
			p, _ := portOf(old)
			if st, _, _ := r.sd.State(context.Background(), instance("jecloud-shop_prod_web@.service", p)); st != "inactive" {
				t.Errorf("old instance %s", st)
			}
		})
	}
}

// TestUpgradeFromSocketUnits: an app environment running the socket mode's
// units (web@1.service and web@1.socket on ports.json's port) is drained
// through that port, then its units are stopped, their links and
// templates removed.
func TestUpgradeFromSocketUnits(t *testing.T) {
	r := newRig(t)
	os.WriteFile(filepath.Join(r.a.dir, "ports.json"), []byte(`{"web": 5000}`), 0o644)
	sockSpec := &appspec.Spec{Processes: map[string]string{"web": "node server.js"}, Web: appspec.Web{SocketActivation: new(bool)}}
	*sockSpec.Web.SocketActivation = true
	old := appUnits{App: "shop", Env: "prod", ReleaseDir: "/x/v0", Port: 5000, Socket: true, Processes: sockSpec.Processes}
	if _, err := r.h.writeUnits(old.render()); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"multi-user.target.wants/jecloud-shop_prod_web@1.service", "sockets.target.wants/jecloud-shop_prod_web@1.socket"} {
		os.MkdirAll(filepath.Join(r.h.UnitDir, filepath.Dir(w)), 0o755)
		os.Symlink("../jecloud-shop_prod_web@.service", filepath.Join(r.h.UnitDir, w))
	}
	r.sd.active["jecloud-shop_prod_web@1.service"] = nil
	r.sd.active["jecloud-shop_prod_web@1.socket"] = nil
	// The deploy writes the proxy mode's units (the templates stay until
	// the old instances are gone, as deployed does).
	spec := &appspec.Spec{Processes: map[string]string{"web": "node server.js"}}
	r.a.release = filepath.Join(r.a.dir, "source", "versions", "v1")
	u := appUnits{App: "shop", Env: "prod", User: r.a.user, Root: r.a.root, AppDir: r.a.dir, ReleaseDir: r.a.release, NodeBin: "/n/bin", Processes: spec.Processes, Proxied: true}
	set := u.render()
	for _, tmpl := range []string{"jecloud-shop_prod_web@.service", "jecloud-shop_prod_web@.socket"} {
		b, _ := os.ReadFile(filepath.Join(r.h.UnitDir, tmpl))
		set.files[tmpl] = string(b)
	}
	if _, err := r.h.writeUnits(set); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	if err := r.h.start(context.Background(), r.sd, r.a, u, spec, true, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(r.door.applied) != 2 || !slices.Equal(r.door.applied[0].Draining, []string{"127.0.0.1:5000"}) || len(r.door.applied[1].Draining) != 0 {
		t.Errorf("applied %+v", r.door.applied)
	}
	for _, n := range []string{"jecloud-shop_prod_web@1.service", "jecloud-shop_prod_web@1.socket"} {
		if _, ok := r.sd.active[n]; ok {
			t.Errorf("%s still active", n)
		}
	}
	left, _ := filepath.Glob(filepath.Join(r.h.UnitDir, "*", "jecloud-shop_prod_web@1.*"))
	tmpl, _ := filepath.Glob(filepath.Join(r.h.UnitDir, "jecloud-shop_prod_web@.*"))
	if len(left)+len(tmpl) > 0 {
		t.Errorf("left behind: %v %v", left, tmpl)
	}
	if got := r.serving(); !slices.Equal(got, []string{"v1"}) {
		t.Errorf("serving %v", got)
	}
	if !strings.Contains(log.String(), "stopping jecloud-shop_prod_web@1.service (the web process is behind the front door now)") {
		t.Errorf("log:\n%s", log.String())
	}
}

// TestRefusedApply: a configuration the proxy refuses leaves upstreams.json
// as it was and stops the new instances.
func TestRefusedApply(t *testing.T) {
	r := newRig(t)
	if _, err := r.deploy("v1", nil, true); err != nil {
		t.Fatal(err)
	}
	u1 := r.upstreams()
	r.door.refuse = fmt.Errorf("loading config: bad")
	_, err := r.deploy("v2", nil, true)
	if err == nil || !strings.Contains(err.Error(), "loading config: bad") {
		t.Fatalf("err = %v", err)
	}
	r.door.refuse = nil
	if u := r.upstreams(); !slices.Equal(u.Web, u1.Web) || len(u.Draining) != 0 || !slices.Equal(r.serving(), []string{"v1"}) {
		t.Errorf("after a refused apply: %+v serving %v", u, r.serving())
	}
}

func TestPickPorts(t *testing.T) {
	root := t.TempDir()
	unitDir := t.TempDir()
	for _, d := range []string{"shop/prod", "blog/prod"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "shop/prod/ports.json"), []byte(`{"web": 5000, "redis": 10000}`), 0o644)
	os.WriteFile(filepath.Join(root, "blog/prod/upstreams.json"), []byte(`{"web": ["127.0.0.1:10001"], "draining": ["127.0.0.1:10003"]}`), 0o644)
	os.WriteFile(filepath.Join(unitDir, "jecloud-blog_prod_web@10004.service"), nil, 0o644)
	bound := map[int]bool{10005: true}
	for _, tc := range []struct {
		name  string
		lo    int
		hi    int
		n     int
		taken map[int]bool
		want  []int
		err   string
	}{
		{"skips recorded, unit files, bound", 10000, 10010, 3, nil, []int{10002, 10006, 10007}, ""},
		{"skips taken", 10000, 10010, 1, map[int]bool{10002: true}, []int{10006}, ""},
		{"none", 10000, 10010, 0, nil, nil, ""},
		{"range full", 10000, 10005, 2, nil, nil, "no free port for 2 web instance(s) in 10000-10005"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &Hook{UnitDir: unitDir, InstancePorts: [2]int{tc.lo, tc.hi}, PortFree: func(p int) bool { return !bound[p] }}
			got, err := h.pickPorts(root, settings{}, tc.n, tc.taken)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("pickPorts = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	var s settings
	s.Node.InstancePorts = []int{10020, 10021}
	if got, err := (&Hook{UnitDir: unitDir, PortFree: func(int) bool { return true }}).pickPorts(root, s, 2, nil); err != nil || !slices.Equal(got, []int{10020, 10021}) {
		t.Errorf("server.json's range: %v %v", got, err)
	}
	s.Node.InstancePorts = []int{80, 90}
	if _, err := (&Hook{UnitDir: unitDir}).pickPorts(root, s, 1, nil); err == nil || !strings.Contains(err.Error(), "server.json: node.instance_ports [80 90]: give [FIRST, LAST]") {
		t.Errorf("a bad range: %v", err)
	}
	os.WriteFile(filepath.Join(root, "blog/prod/upstreams.json"), []byte(`{"web": ["10.0.0.1:80"]}`), 0o644)
	if _, err := (&Hook{UnitDir: unitDir}).pickPorts(root, settings{}, 1, nil); err == nil || !strings.Contains(err.Error(), "upstreams.json") {
		t.Errorf("a hostile upstreams.json: %v", err)
	}
}
