package proxy_test

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/proxy"
	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
)

// door starts the front door as jecloud-haproxy.service and
// jecloud-proxy.service run it, with Debian's haproxy and caddy
// (scripts/setup.sh installs them) in a temp dir: HAProxy in master-worker
// mode with its master CLI on a socket, its access log sent to a syslog
// socket the test reads into haproxy.log; Caddy with its admin API on a
// socket (--resume). It returns a client whose Apply listens on free
// loopback ports, HAProxy's HTTP address, and a restart of both.
func door(t testing.TB) (*proxy.Client, string, func()) {
	t.Helper()
	caddyBin, err := exec.LookPath("caddy")
	if err != nil {
		t.Skip("caddy is not installed (scripts/setup.sh installs it)")
	}
	haproxyBin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy is not installed (scripts/setup.sh installs it)")
	}
	dir := t.TempDir()
	sock, master, cfgFile := filepath.Join(dir, "admin.sock"), filepath.Join(dir, "master.sock"), filepath.Join(dir, "haproxy.cfg")
	boot := filepath.Join(dir, "boot.json")
	os.WriteFile(boot, []byte(`{"admin":{"listen":"unix/`+sock+`","origins":["localhost"]}}`), 0o644)
	logSock := filepath.Join(dir, "log.sock")
	syslog, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: logSock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syslog.Close() })
	go func() {
		f, _ := os.Create(filepath.Join(dir, "haproxy.log"))
		defer f.Close()
		buf := make([]byte, 16<<10)
		for {
			n, err := syslog.Read(buf)
			if err != nil {
				return
			}
			// "<134>Dec  5 01:02:03 haproxy[12]: MESSAGE": the journal keeps MESSAGE.
			line := string(buf[:n])
			if i := strings.Index(line, "]: "); i >= 0 {
				line = line[i+3:]
			}
			f.WriteString(strings.TrimSuffix(line, "\n") + "\n")
		}
	}()
	httpAddr, httpsAddr, backend := freeAddr(t), freeAddr(t), freeAddr(t)
	adjust := func(in *routes.Input) {
		in.HTTP, in.HTTPS, in.Backend, in.Admin, in.Storage = httpAddr, httpsAddr, backend, sock, filepath.Join(dir, "storage")
		in.Log, in.User = logSock, "-"
		in.CertFile = routes.CertFileIn(in.Storage)
		if in.Proxy.ACME.CA == "" {
			// Nothing leaves the machine: no ACME CA answers there.
			in.Proxy.ACME.CA = "https://127.0.0.1:9/directory"
		}
	}
	// HAProxy starts from a file, as under systemd: the first one routes nothing.
	var empty routes.Input
	adjust(&empty)
	first, _ := routes.Render(empty)
	os.WriteFile(cfgFile, first.HAProxy, 0o644)
	var caddyCmd, haproxyCmd *exec.Cmd
	start := func() {
		caddyCmd = exec.Command(caddyBin, "run", "--resume", "--config", boot)
		caddyCmd.Env = append(os.Environ(), "GOMEMLIMIT=48MiB", "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "HOME="+dir)
		log, _ := os.Create(filepath.Join(dir, "caddy.log"))
		caddyCmd.Stdout, caddyCmd.Stderr = log, log
		if err := caddyCmd.Start(); err != nil {
			t.Fatal(err)
		}
		haproxyCmd = exec.Command(haproxyBin, "-W", "-S", master, "-f", cfgFile)
		hlog, _ := os.Create(filepath.Join(dir, "haproxy.out"))
		haproxyCmd.Stdout, haproxyCmd.Stderr = hlog, hlog
		if err := haproxyCmd.Start(); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{sock, master} {
			for i := 0; ; i++ {
				if c, err := net.Dial("unix", s); err == nil {
					c.Close()
					break
				}
				if i == 100 {
					b, _ := os.ReadFile(filepath.Join(dir, "caddy.log"))
					h, _ := os.ReadFile(filepath.Join(dir, "haproxy.out"))
					t.Fatalf("the front door did not open %s:\ncaddy:\n%s\nhaproxy:\n%s", s, b, h)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	stop := func() {
		for _, c := range []*exec.Cmd{haproxyCmd, caddyCmd} {
			c.Process.Kill()
			c.Wait()
		}
	}
	start()
	t.Cleanup(stop)
	c := &proxy.Client{Socket: sock, HAProxy: &proxy.HAProxy{Master: master}, HAProxyFile: cfgFile, Adjust: adjust}
	// After a restart, both answer on their sockets a moment before they
	// listen on the addresses of their configurations.
	restart := func() {
		stop()
		start()
		for _, a := range []string{httpAddr, backend} {
			for i := 0; i < 100; i++ {
				if c, err := net.Dial("tcp", a); err == nil {
					c.Close()
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	return c, httpAddr, restart
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// app is a web instance: it answers with its name.
func app(t testing.TB, name string, delay time.Duration) string {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		fmt.Fprintf(w, "%s %s", name, r.Host)
	}))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func deploy(t testing.TB, l state.Layout, ae state.AppEnv, a state.App, u routes.Upstreams) {
	t.Helper()
	if err := os.MkdirAll(l.AppDir(ae), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := state.UpdateApp(l.AppJSON(ae), func(x *state.App) error {
		x.CurrentVersion, x.Domains, x.Maintenance = a.CurrentVersion, a.Domains, a.Maintenance
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := routes.WriteUpstreams(l, ae, u); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, addr, host string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", addr, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestApplyRoutesByHost(t *testing.T) {
	c, addr, restart := door(t)
	ctx := context.Background()
	l := state.Layout{Root: t.TempDir()}
	shop, blog := state.AppEnv{App: "shop", Env: "prod"}, state.AppEnv{App: "blog", Env: "prod"}
	deploy(t, l, shop, state.App{CurrentVersion: "aaaaaaaaaaaa", Domains: []string{"shop.example.com"}}, routes.Upstreams{Web: []string{app(t, "shop-1", 0), app(t, "shop-2", 0)}})
	deploy(t, l, blog, state.App{CurrentVersion: "bbbbbbbbbbbb", Domains: []string{"blog.example.com"}}, routes.Upstreams{Web: []string{app(t, "blog", 0)}})
	if _, err := c.Apply(ctx, l); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 4 {
		code, body := get(t, addr, "shop.example.com")
		if code != 200 || !strings.HasPrefix(body, "shop-") {
			t.Fatalf("shop.example.com: %d %q", code, body)
		}
		seen[strings.Fields(body)[0]] = true
	}
	if len(seen) != 2 {
		t.Errorf("two shop instances, requests went to %v", seen)
	}
	if code, body := get(t, addr, "blog.example.com"); code != 200 || !strings.HasPrefix(body, "blog blog.example.com") {
		t.Errorf("blog.example.com: %d %q", code, body)
	}
	// Two app environments with web processes: none is the default.
	if code, body := get(t, addr, "127.0.0.1"); code != 404 || !strings.Contains(body, "No app is served at this address") {
		t.Errorf("bare address: %d %q", code, body)
	}
	os.WriteFile(l.ServerJSON(), nil, 0o644)
	os.MkdirAll(l.Sys(), 0o755)
	os.WriteFile(l.ServerJSON(), []byte(`{"proxy": {"default_app": "blog/prod", "base_domain": "apps.example.net"}}`), 0o644)
	if _, err := c.Apply(ctx, l); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, addr, "127.0.0.1"); code != 200 || !strings.HasPrefix(body, "blog") {
		t.Errorf("bare address with default_app blog/prod: %d %q", code, body)
	}
	if code, body := get(t, addr, "shop-prod.apps.example.net"); code != 200 || !strings.HasPrefix(body, "shop-") {
		t.Errorf("default name shop-prod.apps.example.net: %d %q", code, body)
	}

	// Maintenance: 503 with the release's own page; the app is not asked.
	os.MkdirAll(filepath.Join(l.Versions(shop), "aaaaaaaaaaaa"), 0o755)
	os.Symlink("aaaaaaaaaaaa", l.Current(shop))
	os.WriteFile(filepath.Join(l.Current(shop), routes.MaintenancePage), []byte("<h1>Back soon, shop</h1>{env.HOME}{http.request.header.Cookie} C:\\x"), 0o644)
	deploy(t, l, shop, state.App{CurrentVersion: "aaaaaaaaaaaa", Domains: []string{"shop.example.com"}, Maintenance: true}, routes.Upstreams{Web: []string{app(t, "shop-3", 0)}})
	if _, err := c.Apply(ctx, l); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, addr, "shop.example.com"); code != 503 || body != "<h1>Back soon, shop</h1>{env.HOME}{http.request.header.Cookie} C:\\x" {
		t.Errorf("maintenance: %d %q", code, body)
	}

	// A configuration the proxy refuses (a CA root file that is not
	// there) leaves the running one, and says why.
	os.WriteFile(l.ServerJSON(), []byte(`{"proxy": {"default_app": "blog/prod", "acme": {"ca_root": "/nonexistent/root.pem"}}}`), 0o644)
	_, err := c.Apply(ctx, l)
	if err == nil || !strings.Contains(err.Error(), "keeps the running one") || !strings.Contains(err.Error(), "/nonexistent/root.pem") {
		t.Errorf("refused configuration: %v", err)
	}
	if code, body := get(t, addr, "blog.example.com"); code != 200 || !strings.HasPrefix(body, "blog") {
		t.Errorf("after a refused configuration, blog.example.com: %d %q", code, body)
	}

	// An app.json that stops parsing (a hand edit gone wrong): that app
	// environment keeps its routes, the others go on.
	good, _ := os.ReadFile(l.AppJSON(blog))
	os.WriteFile(l.AppJSON(blog), []byte("{\"domains\": [\n"), 0o644)
	os.WriteFile(l.ServerJSON(), []byte(`{"proxy": {"default_app": "blog/prod"}}`), 0o644)
	notes, err := c.Apply(ctx, l)
	if err != nil || len(notes) != 1 || !strings.Contains(notes[0], "blog/prod: routed as before") {
		t.Errorf("apply with blog's app.json broken: %v, notes %q", err, notes)
	}
	if code, body := get(t, addr, "blog.example.com"); code != 200 || !strings.HasPrefix(body, "blog") {
		t.Errorf("blog.example.com while its app.json does not parse: %d %q", code, body)
	}
	os.WriteFile(l.AppJSON(blog), good, 0o644)

	// A proxy that restarts comes back with every route it had.
	restart()
	if code, body := get(t, addr, "blog.example.com"); code != 200 || !strings.HasPrefix(body, "blog") {
		t.Errorf("after a restart, blog.example.com: %d %q", code, body)
	}
}

// TestDrainCounts: an instance moved to Draining takes no new request,
// and the requests it had in flight finish and are counted until then.
func TestDrainCounts(t *testing.T) {
	c, addr, _ := door(t)
	ctx := context.Background()
	l := state.Layout{Root: t.TempDir()}
	ae := state.AppEnv{App: "shop", Env: "prod"}
	old, next := app(t, "old", time.Second), app(t, "new", 0)
	deploy(t, l, ae, state.App{CurrentVersion: "aaaaaaaaaaaa"}, routes.Upstreams{Web: []string{old}})
	if _, err := c.Apply(ctx, l); err != nil {
		t.Fatal(err)
	}
	done := make(chan string)
	go func() { _, body := get(t, addr, "127.0.0.1"); done <- body }()
	time.Sleep(200 * time.Millisecond)
	deploy(t, l, ae, state.App{CurrentVersion: "aaaaaaaaaaaa"}, routes.Upstreams{Web: []string{next}, Draining: []string{old}})
	if _, err := c.Apply(ctx, l); err != nil {
		t.Fatal(err)
	}
	n, err := c.InFlight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n[old] != 1 {
		t.Errorf("in flight right after the switch: %v, want 1 at %s", n, old)
	}
	if _, body := get(t, addr, "127.0.0.1"); !strings.HasPrefix(body, "new") {
		t.Errorf("a new request after the switch went to %q", body)
	}
	if body := <-done; !strings.HasPrefix(body, "old") {
		t.Errorf("the request in flight got %q", body)
	}
	if n, _ := c.InFlight(ctx); n[old] != 0 {
		t.Errorf("in flight after it finished: %v", n)
	}
}

func TestNotRunning(t *testing.T) {
	c := &proxy.Client{Socket: filepath.Join(t.TempDir(), "none.sock"), HAProxy: &proxy.HAProxy{Master: filepath.Join(t.TempDir(), "none.sock")}}
	if _, err := c.InFlight(context.Background()); !errors.Is(err, proxy.ErrHAProxyNotRunning) {
		t.Errorf("InFlight with no HAProxy: %v", err)
	}
	if _, err := c.Config(context.Background()); err == nil || !strings.Contains(err.Error(), proxy.Unit+") is not running") {
		t.Errorf("Config with no Caddy: %v", err)
	}
}

// TestWebSocketPassesThrough: an upgraded connection (WebSocket) goes
// through the front door both ways, and counts as a request in flight
// while it is open, so a drain waits for it (up to [grace]).
func TestWebSocketPassesThrough(t *testing.T) {
	c, addr, _ := door(t)
	ctx := context.Background()
	l := state.Layout{Root: t.TempDir()}
	ae := state.AppEnv{App: "chat", Env: "prod"}
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want an upgrade", http.StatusBadRequest)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		// RFC 6455's answer to the key (HAProxy checks it, as browsers do).
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
		rw.Flush()
		buf := make([]byte, 64)
		for {
			n, err := rw.Read(buf)
			if err != nil {
				return
			}
			rw.Write(append([]byte("echo "), buf[:n]...))
			rw.Flush()
		}
	}))
	t.Cleanup(ws.Close)
	upstream := strings.TrimPrefix(ws.URL, "http://")
	deploy(t, l, ae, state.App{CurrentVersion: "aaaaaaaaaaaa", Domains: []string{"chat.example.com"}}, routes.Upstreams{Web: []string{upstream}})
	if _, err := c.Apply(ctx, l); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /socket HTTP/1.1\r\nHost: chat.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	head := make([]byte, 0, 512)
	buf := make([]byte, 512)
	for !strings.Contains(string(head), "\r\n\r\n") {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("upgrade through the front door: %v (got %q)", err, head)
		}
		head = append(head, buf[:n]...)
	}
	if !strings.HasPrefix(string(head), "HTTP/1.1 101") {
		t.Fatalf("upgrade through the front door: %q", head)
	}
	for _, msg := range []string{"ping", "pong"} {
		conn.Write([]byte(msg))
		n, err := conn.Read(buf)
		if err != nil || string(buf[:n]) != "echo "+msg {
			t.Fatalf("message %q through the upgraded connection: %q %v", msg, buf[:n], err)
		}
	}
	if n, err := c.InFlight(ctx); err != nil || n[upstream] != 1 {
		t.Errorf("in flight while the WebSocket is open: %v %v, want 1 at %s", n, err, upstream)
	}
}

// TestHealthPath: every host name answers a load balancer's health checks
// at routes.HealthPath itself (the app is not asked): 200 "ok", 503
// "draining" from the moment the agent sets the app environment's marker
// (no reload), 503 with no web process; the bare address answers for the
// default app.
func TestHealthPath(t *testing.T) {
	c, addr, _ := door(t)
	l := state.Layout{Root: t.TempDir()}
	shop, blog := state.AppEnv{App: "shop", Env: "prod"}, state.AppEnv{App: "blog", Env: "prod"}
	deploy(t, l, shop, state.App{CurrentVersion: "aaaaaaaaaaaa", Domains: []string{"shop.example.com"}}, routes.Upstreams{Web: []string{app(t, "shop", 0)}})
	deploy(t, l, blog, state.App{CurrentVersion: "bbbbbbbbbbbb", Domains: []string{"blog.example.com"}}, routes.Upstreams{})
	os.MkdirAll(l.Sys(), 0o755)
	os.WriteFile(l.ServerJSON(), []byte(`{"proxy": {"default_app": "shop/prod"}}`), 0o644)
	if _, err := c.Apply(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	health := func(host string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+routes.HealthPath, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s (Host %s): %v", routes.HealthPath, host, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		draining   bool
		host       string
		code       int
		body, what string
	}{
		{false, "shop.example.com", 200, "ok\n", "routed"},
		{false, "127.0.0.1", 200, "ok\n", "the bare address, default app shop/prod"},
		{false, "blog.example.com", 503, "no web process\n", "no web process"},
		{true, "shop.example.com", 503, "draining\n", "being switched"},
		{true, "127.0.0.1", 503, "draining\n", "the bare address while shop/prod is switched"},
		{false, "shop.example.com", 200, "ok\n", "switched"},
	} {
		if err := routes.SetDraining(l, shop, c.draining); err != nil {
			t.Fatal(err)
		}
		if routes.Draining(l, shop) != c.draining {
			t.Fatalf("Draining = %v after SetDraining(%v)", !c.draining, c.draining)
		}
		if code, body := health(c.host); code != c.code || body != c.body {
			t.Errorf("%s: %s on %s: %d %q, want %d %q", c.what, routes.HealthPath, c.host, code, body, c.code, c.body)
		}
	}
	if code, body := get(t, addr, "shop.example.com"); code != 200 || body != "shop shop.example.com" {
		t.Errorf("the app itself: %d %q", code, body)
	}
	// The app's request is in the access log; the checks are not.
	time.Sleep(200 * time.Millisecond) // HAProxy logs a request once it is done
	log, _ := os.ReadFile(filepath.Join(filepath.Dir(c.Socket), "haproxy.log"))
	if !strings.Contains(string(log), `"logger":"http.log.access.shop_prod"`) || strings.Contains(string(log), routes.HealthPath) {
		t.Errorf("access log: want the app's request and no health check:\n%s", log)
	}
}
