//go:build e2e

package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// The attacking apps stop by themselves at these bounds: the lab's
// containers cannot enforce TasksMax= and MemoryMax= on every host (see
// TestLimits), and an unbounded fork bomb or leak there would take the
// test machine, not only the container.
const (
	forkCap   = 1500 // sleeping processes
	hogCapMiB = 1536
)

// goodJS answers "good VERSION", and on /meta tries the instance metadata
// service's two addresses and says what each connect did.
const goodJS = `const http = require("http");
const net = require("net");
function probe(host, cb) {
  const c = net.connect(80, host);
  let done = false;
  const end = (r) => { if (!done) { done = true; c.destroy(); cb(r); } };
  c.setTimeout(3000, () => end("timeout"));
  c.on("connect", () => end("connected"));
  c.on("error", (e) => end(e.code));
}
const server = http.createServer((req, res) => {
  if (req.url === "/meta") {
    probe("169.254.169.254", (a) => probe("fd00:ec2::254", (b) => res.end(JSON.stringify({ v4: a, v6: b }) + "\n")));
    return;
  }
  res.end("good " + process.env.JECLOUD_VERSION + "\n");
});
` + serveJS

// forkJS forks without end (up to forkCap) once asked to on /go, and again
// at every start after that (the flag is in its data directory).
var forkJS = `const http = require("http");
const fs = require("fs");
const cp = require("child_process");
const flag = process.env.HOME + "/../data/go";
function bomb() {
  cp.spawn("/bin/sh", ["-c", "i=0; while [ $i -lt ` + fmt.Sprint(forkCap) + ` ]; do sleep 600 & i=$((i+1)); done; wait"], { stdio: "ignore" });
}
if (fs.existsSync(flag)) bomb();
const server = http.createServer((req, res) => {
  if (req.url === "/go") { fs.writeFileSync(flag, "1"); bomb(); }
  res.end("forker\n");
});
` + serveJS

// hogJS allocates (and touches) 16 MiB every 20 ms once asked to on /go,
// and again at every start after that, up to hogCapMiB.
var hogJS = `const http = require("http");
const fs = require("fs");
const flag = process.env.HOME + "/../data/go";
const kept = [];
function hog() {
  const t = setInterval(() => { if (kept.length * 16 >= ` + fmt.Sprint(hogCapMiB) + `) { clearInterval(t); return; } kept.push(Buffer.alloc(16 << 20, 1)); }, 20);
}
if (fs.existsSync(flag)) hog();
const server = http.createServer((req, res) => {
  if (req.url === "/go") { fs.writeFileSync(flag, "1"); hog(); }
  res.end("hog " + kept.length * 16 + " MiB\n");
});
` + serveJS

// TestLimits (issue #17 part 4): three apps on one server, one of which
// forks without end and one of which allocates memory without end; while
// they do, the third keeps answering and a new deploy of it goes live.
// Every app unit has TasksMax=, MemoryHigh=/MemoryMax=, CPUWeight= and
// IPAddressDeny= of the metadata service (checked in systemd's view of
// them); where the server can enforce them (cgroup v2 with the pids and
// memory controllers; BPF) the test checks that it does. It also scores
// every unit JeCloud wrote with `systemd-analyze security`.
func TestLimits(t *testing.T) {
	srv, jepush, nodeVersion := nodeServer(t)
	major := strings.Split(nodeVersion, ".")[0]

	// A stand-in metadata service on its real addresses. The front door
	// (jecloud-haproxy.service, or Debian's caddy.service before `jeagent
	// init` turns it off), not used here, holds port 80 on every address.
	srv.Exec(t.Context(), "systemctl", "stop", "jecloud-haproxy.service", "jecloud-proxy.service", "caddy.service", "haproxy.service")
	// A server without the front door, as after `jeagent init --no-proxy`:
	// the web processes bind their ports.json ports themselves.
	srv.MustExec("rm", "-rf", "/var/cloud/sys/proxy")
	srv.MustExec("sh", "-c", "ip addr add 169.254.169.254/32 dev lo && ip -6 addr add fd00:ec2::254/128 dev lo")
	srv.MustExec("systemd-run", "--unit=fake-imds", "node", "-e",
		`const h = require("http"); for (const a of ["169.254.169.254", "fd00:ec2::254"]) h.createServer((q, s) => s.end("iam credentials\n")).listen(80, a);`)
	eventually(t, 10*time.Second, "the stand-in metadata service answers", func() bool {
		out, err := srv.Exec(t.Context(), "curl", "-sS", "-m", "2", "http://169.254.169.254/")
		return err == nil && strings.Contains(out, "iam credentials")
	})

	push := jepushTo(t, jepush, srv)
	apps := map[string]map[string]string{
		"good":   {"server.js": goodJS, "jecloud.toml": "app = \"good\"\n[services]\nredis = \"\"\n"},
		"forker": {"server.js": forkJS, "jecloud.toml": "app = \"forker\"\n[limits.web]\ntasks = 64\n"},
		"hog":    {"server.js": hogJS, "jecloud.toml": "app = \"hog\"\n[limits.web]\nmemory = \"256M\"\n"},
	}
	dirs := map[string]string{}
	for _, name := range []string{"good", "forker", "hog"} {
		dirs[name] = t.TempDir()
		files := apps[name]
		files["package.json"] = `{"name": "` + name + `", "engines": {"node": "` + major + `.x"}, "scripts": {"start": "node server.js"}}`
		files["Procfile"] = "web: node server.js\nworker: node -e 'setInterval(() => {}, 1000)'\n"
		writeFiles(t, dirs[name], files)
		if code, out := push(dirs[name], "prod"); code != 0 {
			t.Fatalf("jepush %s: exit %d\n%s", name, code, out)
		}
	}
	port := func(app string) string {
		b, err := srv.ReadFile("/var/cloud/" + app + "/prod/ports.json")
		if err != nil {
			t.Fatal(err)
		}
		var p map[string]any
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("ports.json: %v\n%s", err, b)
		}
		return fmt.Sprint(p["web"])
	}
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(app, path string) (string, error) {
		resp, err := client.Get("http://" + srv.Addr.String() + ":" + port(app) + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), nil
	}
	show := func(unit string, props ...string) map[string]string {
		out := srv.MustExec(append([]string{"systemctl", "show", unit}, func() []string {
			var a []string
			for _, p := range props {
				a = append(a, "-p", p)
			}
			return a
		}()...)...)
		m := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			k, v, _ := strings.Cut(l, "=")
			m[k] = v
		}
		return m
	}

	// What systemd says the app units are held to.
	for _, c := range []struct{ unit, tasks, memMax, memHigh, cpu string }{
		{webUnit(t, srv, "good", "prod"), "512", "50%", "45%", "100"},
		{"jecloud-good_prod_worker@1.service", "512", "50%", "45%", "100"},
		{webUnit(t, srv, "forker", "prod"), "64", "50%", "45%", "100"},
		{webUnit(t, srv, "hog", "prod"), "512", fmt.Sprint(256 << 20), fmt.Sprint((256 << 20) * 9 / 10), "100"},
	} {
		p := show(c.unit, "TasksMax", "MemoryMax", "MemoryHigh", "CPUWeight", "IPAddressDeny")
		t.Logf("%s: %v", c.unit, p)
		if p["TasksMax"] != c.tasks || p["CPUWeight"] != c.cpu {
			t.Errorf("%s: TasksMax=%s CPUWeight=%s, want %s and %s", c.unit, p["TasksMax"], p["CPUWeight"], c.tasks, c.cpu)
		}
		// systemd shows a share of RAM as bytes: only absolute sizes compare.
		if !strings.HasSuffix(c.memMax, "%") && (p["MemoryMax"] != c.memMax || p["MemoryHigh"] != c.memHigh) {
			t.Errorf("%s: MemoryMax=%s MemoryHigh=%s, want %s and %s", c.unit, p["MemoryMax"], p["MemoryHigh"], c.memMax, c.memHigh)
		}
		if p["MemoryMax"] == "infinity" || p["MemoryHigh"] == "infinity" {
			t.Errorf("%s: no memory limit: %v", c.unit, p)
		}
		// systemd lists the addresses in an order of its own, which differs between versions.
		if deny := strings.Fields(p["IPAddressDeny"]); len(deny) != 2 || !slices.Contains(deny, "169.254.169.254/32") || !slices.Contains(deny, "fd00:ec2::254/128") {
			t.Errorf("%s: IPAddressDeny=%q, want the metadata service's two addresses", c.unit, p["IPAddressDeny"])
		}
	}

	// What this server can enforce.
	cgroupFS := strings.TrimSpace(srv.MustExec("stat", "-fc", "%T", "/sys/fs/cgroup"))
	controllers, _ := srv.Exec(t.Context(), "cat", "/sys/fs/cgroup/cgroup.controllers")
	enforceTasks := cgroupFS == "cgroup2fs" && strings.Contains(controllers, "pids")
	enforceMemory := cgroupFS == "cgroup2fs" && strings.Contains(controllers, "memory")
	t.Logf("server: /sys/fs/cgroup is %s, controllers %q: TasksMax enforced %v, MemoryMax enforced %v", cgroupFS, strings.TrimSpace(controllers), enforceTasks, enforceMemory)

	// The metadata service, from inside an app unit.
	meta, err := get("good", "/meta")
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ V4, V6 string }
	json.Unmarshal([]byte(meta), &m)
	t.Logf("metadata service from the good app's web unit: 169.254.169.254 %s, fd00:ec2::254 %s", m.V4, m.V6)
	metaBlocked := m.V4 == "EPERM" && m.V6 == "EPERM"
	if !metaBlocked {
		if cgroupFS == "cgroup2fs" {
			t.Errorf("an app unit reached the metadata service on a cgroup v2 server: %s", meta)
		} else {
			t.Logf("not enforced here: IPAddressDeny= needs systemd on cgroup v2 with BPF (this server: %s)", cgroupFS)
		}
	}

	// The attack.
	for _, app := range []string{"forker", "hog"} {
		if _, err := get(app, "/go"); err != nil {
			t.Fatalf("%s /go: %v", app, err)
		}
	}
	start := time.Now()
	var served, failed int
	var slowest time.Duration
	var firstErr error
	for time.Since(start) < 15*time.Second {
		t0 := time.Now()
		body, err := get("good", "/")
		if d := time.Since(t0); d > slowest {
			slowest = d
		}
		if err != nil || !strings.HasPrefix(body, "good ") {
			failed++
			if firstErr == nil {
				firstErr = fmt.Errorf("%q %v", body, err)
			}
		} else {
			served++
		}
		time.Sleep(100 * time.Millisecond)
	}
	forks := strings.TrimSpace(srv.MustExec("sh", "-c", "pgrep -c -u jc-forker_prod || true"))
	hogMem := strings.TrimSpace(srv.MustExec("sh", "-c", "ps -o rss= -u jc-hog_prod | awk '{s+=$1} END {print int(s/1024)}'"))
	fp := show(webUnit(t, srv, "forker", "prod"), "TasksCurrent", "NRestarts")
	hp := show(webUnit(t, srv, "hog", "prod"), "MemoryCurrent", "NRestarts", "Result")
	t.Logf("after 15 s: forker has %s processes (%v), hog holds %s MiB (%v)", forks, fp, hogMem, hp)
	if failed > 0 {
		t.Errorf("the good app failed %d of %d requests while the others misbehaved; first: %v", failed, served+failed, firstErr)
	}
	if enforceTasks {
		if n := atoi(forks); n > 64 {
			t.Errorf("the forker runs %d processes with TasksMax=64", n)
		}
	} else {
		t.Logf("not enforced here: TasksMax= needs the pids controller in systemd's cgroup v2 hierarchy (the fork bomb stopped at its own bound, %d)", forkCap)
	}
	if enforceMemory {
		if n := atoi(hogMem); n > 256 {
			t.Errorf("the hog holds %d MiB with MemoryMax=256M", n)
		}
	} else {
		t.Logf("not enforced here: MemoryMax= needs the memory controller in systemd's cgroup v2 hierarchy (the hog stopped at its own bound, %d MiB)", hogCapMiB)
	}

	// The agent still deploys.
	writeFiles(t, dirs["good"], map[string]string{"version.txt": "2"})
	deployStart := time.Now()
	code, out := push(dirs["good"], "prod")
	deployTook := time.Since(deployStart)
	if code != 0 {
		t.Fatalf("redeploy of the good app while the others misbehave: exit %d\n%s", code, out)
	}
	v2 := readApp(t, srv, "good", "prod").CurrentVersion
	if body, err := get("good", "/"); err != nil || body != "good "+v2+"\n" {
		t.Errorf("after the redeploy: %q %v, want good %s", body, err, v2)
	}

	// The agent ran (the redeploy above) with its OOM protection and
	// sandbox: systemd applied them, or the unit would have failed.
	if out, _ := srv.Exec(t.Context(), "systemctl", "show", "-p", "OOMScoreAdjust", "-p", "Result", "jeagent-rollforward.service"); !strings.Contains(out, "OOMScoreAdjust=-500") || !strings.Contains(out, "Result=success") {
		t.Errorf("jeagent-rollforward.service: %s", out)
	}

	// systemd-analyze security of every unit JeCloud wrote here.
	units := []string{
		webUnit(t, srv, "good", "prod"), "jecloud-good_prod_worker@1.service", webUnit(t, srv, "forker", "prod"),
		webUnit(t, srv, "hog", "prod"), "jecloud-good_prod_redis.service", "jeagent-rollforward.service",
	}
	t.Logf("| unit | systemd-analyze security |")
	for _, u := range units {
		out, _ := srv.Exec(t.Context(), "systemd-analyze", "security", "--no-pager", u)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		last := lines[len(lines)-1]
		t.Logf("| %s | %s |", u, strings.TrimPrefix(strings.TrimSpace(last), "→ Overall exposure level for "+u+": "))
		// The agent installs packages and units as root: only partly
		// sandboxed, on purpose (7.8 EXPOSED before issue #17's last
		// round; its seccomp filter, capabilities and address families
		// since: MEDIUM).
		want := 4.0
		if u == "jeagent-rollforward.service" {
			want = 6.0
		}
		var score float64
		if i := strings.Index(last, ": "); i < 0 {
			t.Errorf("%s: no score in %q", u, last)
		} else if fmt.Sscan(last[i+2:], &score); score > want {
			t.Errorf("%s: exposure %s, want %.1f or less", u, last[i+2:], want)
		}
	}
	t.Logf("summary: good app served %d of %d requests (slowest %s) while one app forked (%s processes, TasksMax=64) and one allocated (%s MiB, MemoryMax=256M); redeploy in %s; metadata service from an app unit: %s/%s",
		served, served+failed, slowest.Round(time.Millisecond), forks, hogMem, deployTook.Round(100*time.Millisecond), m.V4, m.V6)
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}
