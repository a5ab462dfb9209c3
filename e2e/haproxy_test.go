//go:build e2e

package e2e_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/lab"
	"github.com/jecloud/jecloud/internal/routes"
)

// TestHAProxyRollingDeploy (issue #22 §2): a load balancer of the user's own
// (a real HAProxy on the test host) in front of three lab servers, checking
// each server's front door at routes.HealthPath. A rolling deploy (jepush to
// the three, one after another) under load: each server's health path says
// "draining" before its switch, HAProxy takes it out of rotation, and puts
// it back once the new release serves; at most one server is out at a
// time; no request fails.
func TestHAProxyRollingDeploy(t *testing.T) {
	t.Parallel() // mostly waiting (docs/lab.md: lab tests in parallel)
	lab.Require(t)
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal("haproxy is not installed (scripts/setup.sh installs it)")
	}
	jeagent, jepush := binaries(t)
	srvs := lab.Boot(t, 3)
	m := buildMirror(t)
	major := strings.Split(m.version, ".")[0]
	var hosts []string
	for _, s := range srvs {
		if err := s.CopyIn(jeagent, "/usr/local/bin/jeagent"); err != nil {
			t.Fatal(err)
		}
		s.MustExec("jeagent", "init")
		if err := m.install(s); err != nil {
			t.Fatal(err)
		}
		// HAProxy below sees a change after 2 checks 300 ms apart.
		s.MustExec("python3", "-c", `import json
p = "/var/cloud/sys/server.json"
d = json.load(open(p))
d.setdefault("proxy", {})["lb_wait"] = "2s"
json.dump(d, open(p, "w"), indent=2)`)
		hosts = append(hosts, "--host", "root@"+s.Addr.String())
	}
	home := lab.SSHHome(t, srvs...)
	push := func(args ...string) (int, string) {
		cmd := exec.Command(jepush, append(args, hosts...)...)
		cmd.Env = append(os.Environ(), "HOME="+home, "SSH_AUTH_SOCK=", "NO_COLOR=1")
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	dir := t.TempDir()
	pkg, _ := json.Marshal(map[string]any{"name": "shop", "engines": map[string]string{"node": major + ".x"}})
	writeFiles(t, dir, map[string]string{
		"package.json": string(pkg), "Procfile": "web: node server.js\n", "jecloud.toml": "app = \"shop\"\n", "version.txt": "1\n",
		"server.js": `const v = require("fs").readFileSync("version.txt", "utf8").trim();
require("http").createServer((q, s) => s.end("release " + v + "\n")).listen(process.env.PORT);
`,
	})
	if code, out := push(dir, "prod"); code != 0 {
		t.Fatalf("first push to the three: exit %d\n%s", code, out)
	}

	// HAProxy, as docs/routing.md configures it.
	hdir := t.TempDir()
	front := freeTCPAddr(t)
	stats := filepath.Join(hdir, "admin.sock")
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `global
    stats socket %s mode 600 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check 2s
frontend web
    bind %s
    default_backend jecloud
backend jecloud
    balance roundrobin
    option httpchk
    http-check send meth GET uri %s ver HTTP/1.1 hdr Host shop.example.com
    http-check expect status 200
    default-server inter 300ms fall 2 rise 2
`, stats, front, routes.HealthPath)
	for i, s := range srvs {
		fmt.Fprintf(&cfg, "    server s%d %s:80 check\n", i+1, s.Addr)
	}
	os.WriteFile(filepath.Join(hdir, "haproxy.cfg"), []byte(cfg.String()), 0o644)
	hp := exec.Command(haproxy, "-db", "-f", filepath.Join(hdir, "haproxy.cfg"))
	hlog, _ := os.Create(filepath.Join(hdir, "haproxy.log"))
	hp.Stdout, hp.Stderr = hlog, hlog
	if err := hp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hp.Process.Kill(); hp.Wait() })
	statusOf := func() (map[string]string, error) {
		c, err := net.DialTimeout("unix", stats, time.Second)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintf(c, "show stat\n")
		st := map[string]string{}
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			f := strings.Split(sc.Text(), ",")
			if len(f) > 17 && f[0] == "jecloud" && strings.HasPrefix(f[1], "s") {
				st[f[1]] = f[17]
			}
		}
		return st, sc.Err()
	}
	eventually(t, 15*time.Second, "HAProxy sees the three servers up", func() bool {
		st, err := statusOf()
		return err == nil && len(st) == 3 && st["s1"] == "UP" && st["s2"] == "UP" && st["s3"] == "UP"
	})

	// What HAProxy sees, every 100 ms, while the deploy rolls.
	var mu sync.Mutex
	out := map[string]bool{}
	maxOut := 0
	var timeline []string
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		last := ""
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			st, err := statusOf()
			if err != nil {
				continue
			}
			n := 0
			var line []string
			for _, s := range []string{"s1", "s2", "s3"} {
				line = append(line, s+"="+st[s])
				if !strings.HasPrefix(st[s], "UP") {
					n++
					mu.Lock()
					out[s] = true
					mu.Unlock()
				}
			}
			mu.Lock()
			maxOut = max(maxOut, n)
			if l := strings.Join(line, " "); l != last {
				timeline = append(timeline, time.Now().UTC().Format("15:04:05.0")+" "+l)
				last = l
			}
			mu.Unlock()
		}
	}()
	writeFiles(t, dir, map[string]string{"version.txt": "2\n"})
	var code int
	var pout string
	r := underLoad(t, front, "shop.example.com", 8, 10000, func() { code, pout = push(dir, "prod") })
	close(stop)
	<-watched
	t.Logf("rolling deploy of three servers behind HAProxy, under load: %s", r)
	t.Logf("HAProxy's view:\n  %s", strings.Join(timeline, "\n  "))
	if code != 0 {
		t.Fatalf("rolling push: exit %d\n%s", code, pout)
	}
	if r.failed != 0 || r.ok < 10000 {
		t.Errorf("%d ok, %d failed: %v", r.ok, r.failed, r.errors)
	}
	if r.bodies["release 1"] == 0 || r.bodies["release 2"] == 0 {
		t.Errorf("answers %v: want both releases", r.bodies)
	}
	if len(out) != 3 || maxOut != 1 {
		t.Errorf("servers out of rotation during the deploy: %v, at most %d at once; want each of the three, one at a time", out, maxOut)
	}
}

func freeTCPAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
