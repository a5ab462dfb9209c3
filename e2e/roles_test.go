//go:build e2e

package e2e_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/jecloud/jecloud/internal/bootstrap"
	"github.com/jecloud/jecloud/internal/ec2test"
	"github.com/jecloud/jecloud/internal/lab"
)

// rolesWorkerJS is a background worker: it only writes a line now and then.
const rolesWorkerJS = `setInterval(() => console.log("worker " + process.pid + " working"), 1000);
process.on("SIGTERM", () => process.exit(0));
`

// TestRoles: one web and one worker server ([env.prod.hosts] web and
// worker, [roles] worker = ["worker"]). The Procfile's worker runs only on
// the worker server and web only on the web server (`jeagent ps --json`);
// `jepush ps:scale prod worker=2` gives two workers on the worker server
// and restarts nothing on the web server; a push with --host to the web
// server alone leaves the workers where they are; with the worker server
// taken out of jecloud.toml, its workers come back to the web server.
func TestRoles(t *testing.T) {
	t.Parallel() // mostly waiting (docs/lab.md: lab tests in parallel)
	lab.Require(t)
	jeagent, jepush := binaries(t)
	servers := lab.Boot(t, 2)
	web, worker := servers[0], servers[1]
	var nodeVersion string
	for _, srv := range servers {
		if err := srv.CopyIn(jeagent, "/usr/local/bin/jeagent"); err != nil {
			t.Fatal(err)
		}
		srv.MustExec("jeagent", "init")
		nodeVersion = installMirror(t, srv)
	}
	webDest, workerDest := "root@"+web.Addr.String(), "root@"+worker.Addr.String()
	dir := t.TempDir()
	hello, err := os.ReadFile(filepath.Join(repoRoot(), "examples", "hello", "server.js"))
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{
		"package.json": `{"name": "shop", "engines": {"node": "` + strings.Split(nodeVersion, ".")[0] + `.x"}}`,
		"server.js":    string(hello),
		"worker.js":    rolesWorkerJS,
		"Procfile":     "web: node server.js\nworker: node worker.js\n",
		"jecloud.toml": "app = \"shop\"\n[web]\nhealth = \"/healthz\"\n[roles]\nworker = [\"worker\"]\n" +
			"[env.prod.hosts]\nweb = [\"" + webDest + "\"]\nworker = [\"" + workerDest + "\"]\n",
	})
	home := lab.SSHHome(t, web, worker)
	jp := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(jepush, args...)
		cmd.Env = append(os.Environ(), "HOME="+home, "SSH_AUTH_SOCK=", "NO_COLOR=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("jepush %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	running := func(srv *lab.Server) string { t.Helper(); return runningOn(t, srv, "shop", "prod") }
	pid := func(srv *lab.Server, unit string) string {
		return strings.TrimSpace(srv.MustExec("systemctl", "show", "-p", "MainPID", "--value", unit))
	}

	start := time.Now()
	out := jp(dir, "prod")
	first := time.Since(start)
	contains(t, "first push", out, "worker servers run worker; web servers run the other process types",
		"deploying", "on "+workerDest+" (worker)", "on "+webDest+" (web)")
	if got := running(web); got != "web.port" {
		t.Errorf("web server runs %q, want web.port only", got)
	}
	if got := running(worker); got != "worker.1" {
		t.Errorf("worker server runs %q, want worker.1 only", got)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + web.Addr.String() + "/healthz") // the front door
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("web server: GET /healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, err := worker.Exec(t.Context(), "sh", "-c", "systemctl list-units --no-legend --state=active 'jecloud-shop_prod_web@*' | grep -q ."); err == nil {
		t.Error("the worker server listens on the web port")
	}

	webPID := pid(web, webUnit(t, web, "shop", "prod"))
	start = time.Now()
	out = jp("ps:scale", "prod", "worker=2", "--dir", dir)
	scale := time.Since(start)
	contains(t, "ps:scale", out, "worker=2: applied on "+workerDest+" (worker)")
	if got := running(worker); got != "worker.1 worker.2" {
		t.Errorf("after ps:scale worker=2 the worker server runs %q, want worker.1 worker.2", got)
	}
	if got := running(web); got != "web.port" {
		t.Errorf("after ps:scale worker=2 the web server runs %q, want web.port", got)
	}
	if now := pid(web, webUnit(t, web, "shop", "prod")); now != webPID {
		t.Errorf("ps:scale worker=2 restarted the web process (pid %s, then %s)", webPID, now)
	}
	ps := jp("ps", "prod", "--dir", dir)
	contains(t, "jepush ps", ps, workerDest+" (worker)", webDest+" (web)", "worker.2")
	t.Logf("jepush ps prod:\n%s", ps)

	// A push to the web server alone (--host) keeps the roles of the file:
	// the web server does not take the workers.
	writeFiles(t, dir, map[string]string{"version.txt": "2"})
	out = jp(dir, "prod", "--host", webDest)
	if got := running(web); got != "web.port" {
		t.Errorf("pushed to the web server alone with --host, it runs %q, want web.port\n%s", got, out)
	}
	// The worker server taken out of the environment: its types come back
	// to the web server (with the count ps:scale recorded there), so that
	// nothing silently stops.
	config := "app = \"shop\"\n[web]\nhealth = \"/healthz\"\n[roles]\nworker = [\"worker\"]\n"
	writeFiles(t, dir, map[string]string{"jecloud.toml": config + "[env.prod]\nhosts = [\"" + webDest + "\"]\n"})
	out = jp(dir, "prod")
	contains(t, "push without worker servers", out, "prod has no worker server: worker run on the web servers")
	if got := running(web); got != "web.port worker.1 worker.2" {
		t.Errorf("without worker servers the web server runs %q, want web.port worker.1 worker.2\n%s", got, out)
	}
	// And back: the workers leave the web server.
	writeFiles(t, dir, map[string]string{"jecloud.toml": config +
		"[env.prod.hosts]\nweb = [\"" + webDest + "\"]\nworker = [\"" + workerDest + "\"]\n"})
	out = jp(dir, "prod")
	if got := running(web); got != "web.port" {
		t.Errorf("with the worker server back, the web server runs %q, want web.port\n%s", got, out)
	}
	if got := running(worker); got != "worker.1 worker.2" {
		t.Errorf("with the worker server back, it runs %q", got)
	}
	t.Logf("summary: first push to a web and a worker server %s; ps:scale worker=2 %s (web untouched: pid %s)",
		first.Round(100*time.Millisecond), scale.Round(100*time.Millisecond), webPID)
}

// runningOn returns the active process instances of APP/ENV on srv, sorted
// ("web.port worker.1"), from `jeagent ps --json`.
func runningOn(t *testing.T, srv *lab.Server, app, env string) string {
	t.Helper()
	var ps struct {
		Processes []struct {
			Type, Instance, State string
		} `json:"processes"`
	}
	if err := json.Unmarshal([]byte(srv.MustExec("jeagent", "ps", app, env, "--json")), &ps); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range ps.Processes {
		if p.State == "active" {
			if n, err := strconv.Atoi(p.Instance); err == nil && n >= 1024 {
				p.Instance = "port" // a web instance behind the front door is named by its port
			}
			out = append(out, p.Type+"."+p.Instance)
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// TestEC2Roles: an EC2 environment deploying through S3 (lab servers as
// instances, the EC2 fake, versitygw). With no worker server the web
// server runs the worker too; `jepush scale test --role worker 1` makes a
// worker server (tagged jecloud:role, in a group with no web port); after
// the next push the worker runs only there and the web server only runs
// web (each follower takes its role from the global state);
// `scale test --role worker 0` moves the worker back to the web server
// before it ends the worker server.
func TestEC2Roles(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	w := newEC2World(t, fmt.Sprintf("deploy = \"s3\"\nserver_s3_endpoint = \"http://s3.jecloud.test:%d\"\n", port))
	w.cloud.s3, w.cloud.s3Port = w.s3, port
	writeFiles(t, w.app, map[string]string{"worker.js": rolesWorkerJS, "Procfile": "web: node server.js\nworker: node worker.js\n"})
	f, _ := os.OpenFile(filepath.Join(w.app, "jecloud.toml"), os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "\n[roles]\nworker = [\"worker\"]\n")
	f.Close()
	run := func(args ...string) string {
		t.Helper()
		out, err := w.jepushIn("", args...)
		if err != nil {
			t.Fatalf("jepush %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	start := time.Now()
	out := run(w.app, "test")
	t.Logf("first push (a web server made, v1 through S3): %s", time.Since(start).Round(time.Second))
	contains(t, "first push", out, "test has no worker server: worker run on the web servers")
	web := w.cloud.booted[0]
	if got := runningOn(t, web, "hello", "test"); got != "web.port worker.1" {
		t.Errorf("with no worker server the web server runs %q, want web.port worker.1", got)
	}

	start = time.Now()
	out = run("scale", "test", "--role", "worker", "1", "--dir", w.app)
	t.Logf("scale --role worker 1: %s\n%s", time.Since(start).Round(time.Second), out)
	contains(t, "scale", out, "hello/test has 1 worker server(s), 2 in all")
	if len(w.cloud.booted) != 2 {
		t.Fatalf("%d servers booted, want 2", len(w.cloud.booted))
	}
	worker := w.cloud.booted[1]
	servers := run("servers", "test", "--dir", w.app)
	t.Logf("jepush servers test:\n%s", servers)
	contains(t, "servers", servers, "hello-test-1", "hello-test-worker-1", " worker ", worker.Addr.String())
	var workerInst ec2test.Instance
	for _, in := range w.fake.Instances() {
		if in.Tags["Name"] == "hello-test-worker-1" {
			workerInst = in
		}
	}
	if workerInst.Tags[bootstrap.TagRole] != "worker" {
		t.Errorf("worker instance tags %v", workerInst.Tags)
	}
	groups, err := ec2Client(t, w.fake).DescribeSecurityGroups(t.Context(), &ec2.DescribeSecurityGroupsInput{GroupIds: workerInst.SecurityGroupIDs})
	if err != nil || len(groups.SecurityGroups) != 1 || aws.ToString(groups.SecurityGroups[0].GroupName) != bootstrap.GroupName("hello", "test", "worker") {
		t.Fatalf("worker group: %+v %v", groups, err)
	}
	for _, p := range groups.SecurityGroups[0].IpPermissions {
		if aws.ToInt32(p.FromPort) != 22 {
			t.Errorf("the worker group opens port %d", aws.ToInt32(p.FromPort))
		}
	}

	start = time.Now()
	out = run(w.app, "test")
	t.Logf("push to a web and a worker server through S3: %s\n%s", time.Since(start).Round(time.Second), out)
	contains(t, "second push", out, "worker servers run worker", "is live on hello-test-worker-1, hello-test-1")
	if got := runningOn(t, worker, "hello", "test"); got != "worker.1" {
		t.Errorf("the worker server runs %q, want worker.1", got)
	}
	eventually(t, 90*time.Second, "the web server stops its worker", func() bool { return runningOn(t, web, "hello", "test") == "web.port" })

	start = time.Now()
	out = run("scale", "test", "--role", "worker", "0", "--dir", w.app)
	t.Logf("scale --role worker 0: %s\n%s", time.Since(start).Round(time.Second), out)
	if got := runningOn(t, web, "hello", "test"); got != "web.port worker.1" {
		t.Errorf("after scale --role worker 0 the web server runs %q, want web.port worker.1", got)
	}
	for _, in := range w.fake.Instances() {
		if in.ID == workerInst.ID && (in.State == "running" || in.State == "pending") {
			t.Errorf("the worker server's instance is %s", in.State)
		}
	}
	st := w.store(t)
	if e, _, err := st.Get(t.Context(), "hello", "test"); err != nil || len(e.Servers) != 1 || e.DesiredRoles["worker"] != 0 {
		t.Errorf("document after scale 0: %+v %v", e, err)
	}
}
