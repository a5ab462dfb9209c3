package proxy

import (
	"context"
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
	"syscall"
	"testing"
	"time"
)

const haproxyBin = "/usr/sbin/haproxy"

func needHAProxy(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(haproxyBin); err != nil {
		t.Skipf("HAProxy is not installed (scripts/setup.sh installs it): %v", err)
	}
}

// haproxyConfig is a front end on 127.0.0.1:port sending everything to
// one server.
func haproxyConfig(port int, server string) string {
	return fmt.Sprintf(`global
    hard-stop-after 1m
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend web
    bind 127.0.0.1:%d
    default_backend app
backend app
    server s1 %s
`, port, server)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// upstream is a web instance answering its name; /slow takes 1.5 s.
func upstream(t *testing.T, name string) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(1500 * time.Millisecond)
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// frontDoor is a master-worker HAProxy started by the test, serving cfg
// (written to file) on 127.0.0.1:port.
type frontDoor struct {
	*HAProxy
	file string
	port int
}

func startHAProxy(t *testing.T, server string) *frontDoor {
	t.Helper()
	needHAProxy(t)
	dir := t.TempDir()
	d := &frontDoor{HAProxy: &HAProxy{Master: filepath.Join(dir, "master.sock")}, file: filepath.Join(dir, "haproxy.cfg"), port: freePort(t)}
	d.write(t, haproxyConfig(d.port, server))
	cmd := exec.Command(haproxyBin, "-W", "-S", d.Master, "-f", d.file)
	log, err := os.Create(filepath.Join(dir, "haproxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// SIGTERM to the master: it stops its workers and exits.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("HAProxy's log:\n%s", b)
		}
	})
	eventually(t, 5*time.Second, "HAProxy's worker answers", func() bool {
		p, err := d.procs(context.Background())
		return err == nil && len(p.current) == 1
	})
	return d
}

func (d *frontDoor) write(t *testing.T, cfg string) {
	t.Helper()
	if err := os.WriteFile(d.file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// get requests path through the front door, on a new connection.
func (d *frontDoor) get(path string) (int, string, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", d.port, path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

type answer struct {
	status int
	body   string
	err    error
}

// getLater starts a request to path and returns where its answer comes.
func (d *frontDoor) getLater(path string) <-chan answer {
	c := make(chan answer, 1)
	go func() {
		status, body, err := d.get(path)
		c <- answer{status, body, err}
	}()
	return c
}

func (d *frontDoor) inFlight(t *testing.T) map[string]int {
	t.Helper()
	n, err := d.InFlight(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func eventually(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(limit); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("after %s: not yet: %s", limit, what)
		}
	}
}

func TestHAProxyCheck(t *testing.T) {
	needHAProxy(t)
	dir := t.TempDir()
	good := haproxyConfig(freePort(t), "127.0.0.1:9")
	tests := []struct {
		name, cfg string
		want      []string // in the error; none: accepted
	}{
		{"good", good, nil},
		{"unknown keyword", good + "    bogus_keyword on\n", []string{"unknown keyword.cfg:13] : unknown keyword 'bogus_keyword' in 'backend' section"}},
		{"bad port", strings.Replace(good, "127.0.0.1:9", "127.0.0.1:99999", 1), []string{"bad port.cfg:12] : 'server app/s1' : invalid port '99999'"}},
		{"missing backend", strings.Replace(good, "default_backend app", "default_backend nope", 1), []string{"unable to find required default_backend: 'nope'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, tt.name+".cfg")
			if err := os.WriteFile(file, []byte(tt.cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			err := (&HAProxy{}).Check(context.Background(), file)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrHAProxyRefused) {
				t.Fatalf("got %v, want a refusal", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "Fatal errors") || strings.Contains(err.Error(), "[ALERT]") {
				t.Errorf("error %q keeps HAProxy's noise", err)
			}
			t.Logf("%v", err)
		})
	}
	t.Run("missing file", func(t *testing.T) {
		err := (&HAProxy{}).Check(context.Background(), filepath.Join(dir, "none.cfg"))
		if !errors.Is(err, ErrHAProxyRefused) || !strings.Contains(err.Error(), "none.cfg : No such file or directory") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestHAProxyInFlight(t *testing.T) {
	slow := upstream(t, "a")
	d := startHAProxy(t, slow)
	if n := d.inFlight(t); n[slow] != 0 {
		t.Fatalf("in flight before any request: %v", n)
	}
	started := time.Now()
	done := d.getLater("/slow")
	eventually(t, time.Second, "one request in flight", func() bool { return d.inFlight(t)[slow] == 1 })
	t.Logf("in flight seen %s after the request started", time.Since(started).Round(time.Millisecond))
	if a := <-done; a.err != nil || a.status != 200 || a.body != "a" {
		t.Fatalf("request: %+v", a)
	}
	if n := d.inFlight(t); n[slow] != 0 {
		t.Fatalf("in flight after the answer: %v", n)
	}
}

// TestHAProxyReload: a reload to a configuration without the server a
// request is in flight to; the old worker finishes it and is counted
// until then.
func TestHAProxyReload(t *testing.T) {
	a, b := upstream(t, "a"), upstream(t, "b")
	d := startHAProxy(t, a)
	ctx := context.Background()
	before, err := d.procs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := d.getLater("/slow")
	eventually(t, time.Second, "the request to a in flight", func() bool { return d.inFlight(t)[a] == 1 })

	// Read all along the reload (the master re-executes itself twice),
	// InFlight never errs nor loses the request.
	stop, polled := make(chan struct{}), make(chan []string)
	go func() {
		var bad []string
		reads := 0
		for ; ; reads++ {
			select {
			case <-stop:
				polled <- append(bad, fmt.Sprint(reads, " reads"))
				return
			case <-time.After(5 * time.Millisecond):
			}
			if n, err := d.InFlight(ctx); err != nil || n[a] != 1 {
				bad = append(bad, fmt.Sprint(n, err))
			}
		}
	}()
	d.write(t, haproxyConfig(d.port, b))
	started := time.Now()
	if err := d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("reload took %s", time.Since(started).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond) // the master's second re-execution
	close(stop)
	if p := <-polled; len(p) > 1 {
		t.Errorf("InFlight during the reload, want %s: 1 each time, got: %v", a, p)
	} else {
		t.Logf("InFlight during the reload: %s, each saying %s: 1", p[0], a)
	}
	after, err := d.procs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.current) != 1 || after.current[0] == before.current[0] || len(after.old) != 1 || after.old[0] != before.current[0] {
		t.Fatalf("show proc: before %+v, after %+v: want a new worker and the old one finishing", before, after)
	}
	if n := d.inFlight(t); n[a] != 1 || n[b] != 0 {
		t.Fatalf("in flight after the reload: %v, want %s: 1 (old worker), %s: 0", n, a, b)
	}
	if status, body, err := d.get("/"); err != nil || status != 200 || body != "b" {
		t.Fatalf("a new request after the reload: %d %q %v, want b", status, body, err)
	}
	if r := <-done; r.err != nil || r.status != 200 || r.body != "a" {
		t.Fatalf("the request in flight across the reload: %+v", r)
	}
	if n := d.inFlight(t); n[a] != 0 {
		t.Fatalf("in flight once answered: %v", n)
	}
	eventually(t, 2*time.Second, "the old worker exits", func() bool {
		p, err := d.procs(ctx)
		return err == nil && len(p.old) == 0
	})
	if err := syscall.Kill(before.current[0], 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("old worker %d: kill -0 says %v, want it gone", before.current[0], err)
	}
}

// TestHAProxyReloadBroken: files the master cannot load, written without
// a check: the reload fails with HAProxy's reason when `haproxy -c` has
// one, and the worker serves on.
func TestHAProxyReloadBroken(t *testing.T) {
	a := upstream(t, "a")
	d := startHAProxy(t, a)
	taken, err := net.Listen("tcp", "127.0.0.1:0") // no SO_REUSEPORT: HAProxy cannot bind it
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	good := haproxyConfig(d.port, a)
	tests := []struct{ name, cfg, want string }{
		{"unknown keyword", good + "    bogus_keyword on\n", "haproxy.cfg:13] : unknown keyword 'bogus_keyword' in 'backend' section"},
		// haproxy -c binds nothing: it finds no fault.
		{"port taken", good + "frontend other\n    bind " + taken.Addr().String() + "\n    default_backend app\n", "could not reload " + d.file + " and keeps the running configuration, though haproxy -c finds no fault; its log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			before, err := d.procs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			d.write(t, tt.cfg)
			started := time.Now()
			err = d.Reload(ctx)
			t.Logf("the failed reload took %s", time.Since(started).Round(time.Millisecond))
			if !errors.Is(err, ErrHAProxyRefused) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("reload: %v, want a refusal saying %q", err, tt.want)
			}
			t.Logf("%v", err)
			after, err := d.procs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(after.current) != 1 || after.current[0] != before.current[0] || after.failed != 1 {
				t.Fatalf("show proc: before %+v, after %+v: want the same worker, 1 failed reload", before, after)
			}
			if status, body, err := d.get("/"); err != nil || status != 200 || body != "a" {
				t.Fatalf("a request after the failed reload: %d %q %v", status, body, err)
			}
			// Fixed, it loads.
			d.write(t, good)
			started = time.Now()
			if err := d.Reload(ctx); err != nil {
				t.Fatalf("reload once fixed: %v", err)
			}
			t.Logf("the reload once fixed took %s", time.Since(started).Round(time.Millisecond))
		})
	}
}

func TestHAProxyNotRunning(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close() // the file stays, nobody listens: a master that died
	calls := map[string]func(*HAProxy, context.Context) error{
		"Reload":   (*HAProxy).Reload,
		"InFlight": func(h *HAProxy, ctx context.Context) error { _, err := h.InFlight(ctx); return err },
	}
	for _, sock := range []string{filepath.Join(dir, "none.sock"), stale} {
		for name, call := range calls {
			// A refusal may be a master re-executing itself: tried again until ctx ends.
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			err := call(&HAProxy{Master: sock}, ctx)
			cancel()
			if !errors.Is(err, ErrHAProxyNotRunning) {
				t.Errorf("%s on %s: %v, want ErrHAProxyNotRunning", name, sock, err)
			}
		}
	}
}
