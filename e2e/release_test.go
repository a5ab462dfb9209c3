//go:build e2e

package e2e_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/lab"
)

// releaseServer answers with the version it runs.
const releaseServer = `const http = require("http");
const server = http.createServer((req, res) => res.end("version " + process.env.JECLOUD_VERSION + "\n"));
` + serveJS

// TestReleasePhase (#20 §2): the Procfile's release command runs once per
// deployment, after prepare and before the switch, as the app's user, in
// the new release, with the config vars, the services' variables
// (REDIS_URL) and the pinned Node.js; its output reaches jepush; it is
// never a unit and does not run again on a restart. A failing one fails
// the deployment before the switch with its last lines in the reason, and
// the live version keeps serving.
func TestReleasePhase(t *testing.T) {
	srv, jepush, nodeVersion := nodeServer(t)
	major := strings.Split(nodeVersion, ".")[0]
	const marker = "/var/cloud/shop/prod/data/releases.log"
	procfile := func(release string) string { return "web: node server.js\nrelease: " + release + "\n" }
	// What the release command records: version, user, directory, a config
	// var, whether REDIS_URL is set, NODE_ENV and node's version.
	const record = `echo "migrating $JECLOUD_VERSION"; echo "$JECLOUD_VERSION $(id -un) $(pwd) greeting=$GREETING redis=${REDIS_URL:+set} $NODE_ENV $(node --version)" >> ` + marker
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"package.json": `{"name": "shop", "engines": {"node": "` + major + `.x"}}`,
		"server.js":    releaseServer,
		"Procfile":     procfile(record),
		"jecloud.toml": "app = \"shop\"\n\n[services]\nredis = \"\"\n\n[grace]\nrelease = \"2m\"\n",
	})
	push := jepushTo(t, jepush, srv)
	url := "http://" + srv.Addr.String() + "/"
	get := func() string {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b))
	}
	markers := func() []string {
		out, _ := srv.Exec(t.Context(), "cat", marker)
		return strings.Split(strings.TrimSpace(out), "\n")
	}

	// A config var set before the first deploy (on the server: the app has
	// no deployment yet for jepush config:set to restart).
	srv.MustExec("jeagent", "config:set", "shop", "prod", "GREETING=hello world", "--no-restart")
	start := time.Now()
	code, out := push(dir, "prod")
	if code != 0 {
		t.Fatalf("first push: exit %d\n%s", code, out)
	}
	v1 := readApp(t, srv, "shop", "prod").CurrentVersion
	t.Logf("first push with a release command: %s", time.Since(start).Round(time.Millisecond))
	contains(t, "jepush's output (the release command's output streams to it)", out, "migrating "+v1)
	m := markers()
	want := fmt.Sprintf("%s jc-shop_prod /var/cloud/shop/prod/source/versions/%s greeting=hello world redis=set production v%s", v1, v1, nodeVersion)
	if len(m) != 1 || m[0] != want {
		t.Fatalf("release marker after the first deploy: %q, want one line %q", m, want)
	}
	if got := get(); got != "version "+v1 {
		t.Errorf("GET / = %q", got)
	}
	// Never a long-running unit; gone once it ran; logged in the journal.
	units := srv.MustExec("sh", "-c", "systemctl list-units --all --no-legend 'jecloud-shop_prod_*' | awk '{print $1}'; ls /etc/systemd/system | grep shop_prod || true")
	if strings.Contains(units, "release") {
		t.Errorf("a unit of the release command is left:\n%s", units)
	}
	contains(t, "the roll-forward's journal", srv.MustExec("journalctl", "--no-pager", "-u", "jeagent-rollforward"), "migrating "+v1)
	contains(t, "the release unit's journal", srv.MustExec("journalctl", "--no-pager", "-u", "jecloud-shop_prod_release.service"), "Started jecloud-shop_prod_release.service")

	// A restart does not run it again.
	if code, out := push("restart", "prod", "--dir", dir); code != 0 {
		t.Fatalf("restart: exit %d\n%s", code, out)
	}
	if m := markers(); len(m) != 1 {
		t.Errorf("the release command ran again on a restart: %q", m)
	}

	// v2: the release command runs before the switch. It waits for the
	// test to see the deployment at "releasing" while v1 still serves.
	writeFiles(t, dir, map[string]string{"Procfile": procfile("while [ ! -e /var/cloud/shop/prod/data/go ]; do sleep 0.2; done; " + record)})
	done := make(chan string, 1)
	go func() { c, o := push(dir, "prod"); done <- fmt.Sprintf("exit %d\n%s", c, o) }()
	eventually(t, 2*time.Minute, "the deployment of v2 at state releasing", func() bool {
		a := readApp(t, srv, "shop", "prod")
		return a.Deployment != nil && a.Deployment.State == "releasing"
	})
	if got := get(); got != "version "+v1 {
		t.Errorf("while v2's release command runs, GET / = %q, want v1 still", got)
	}
	// app.json says "releasing" just before the unit starts: wait for it.
	var ps string
	eventually(t, 30*time.Second, "the release unit active", func() bool {
		ps = srv.MustExec("systemctl", "show", "-p", "User,ActiveState,ProtectSystem,NoNewPrivileges,MemoryMax,TasksMax,RuntimeMaxUSec", "jecloud-shop_prod_release.service")
		return strings.Contains(ps, "ActiveState=active")
	})
	contains(t, "the release unit while it runs", ps, "User=jc-shop_prod", "ActiveState=active", "ProtectSystem=strict", "NoNewPrivileges=yes", "TasksMax=512", "RuntimeMaxUSec=2min")
	srv.MustExec("install", "-o", "jc-shop_prod", "/dev/null", "/var/cloud/shop/prod/data/go")
	res := <-done
	if !strings.HasPrefix(res, "exit 0") {
		t.Fatalf("second push: %s", res)
	}
	v2 := readApp(t, srv, "shop", "prod").CurrentVersion
	if m := markers(); len(m) != 2 || !strings.HasPrefix(m[1], v2+" ") {
		t.Errorf("release marker after v2: %q", m)
	}
	if got := get(); got != "version "+v2 {
		t.Errorf("after v2, GET / = %q", got)
	}

	// v3: a failing release command fails the deployment before the
	// switch, with its last lines; v2 keeps serving.
	writeFiles(t, dir, map[string]string{"Procfile": procfile(`echo "applying migration 41"; echo "migration 42: relation \"users\" already exists" >&2; exit 7`)})
	code, out = push(dir, "prod")
	if code == 0 {
		t.Fatalf("a push whose release command exits 7 succeeded:\n%s", out)
	}
	contains(t, "the failed push's output", out, "exit status 7", `migration 42: relation "users" already exists`, "applying migration 41")
	a := readApp(t, srv, "shop", "prod")
	if a.CurrentVersion != v2 || len(a.RecentFailedDeployments) == 0 {
		t.Fatalf("after a failed release command: current %s (want %s), failures %+v", a.CurrentVersion, v2, a.RecentFailedDeployments)
	}
	reason := a.RecentFailedDeployments[len(a.RecentFailedDeployments)-1].Reason
	contains(t, "the failure's reason", reason, "exit status 7", "applying migration 41", `migration 42: relation "users" already exists`, "was not switched to")
	if cur := srv.MustExec("readlink", "/var/cloud/shop/prod/source/versions/current"); strings.TrimSpace(cur) != v2 {
		t.Errorf("versions/current = %q, want %s", cur, v2)
	}
	if got := get(); got != "version "+v2 {
		t.Errorf("after the failed deploy, GET / = %q, want v2", got)
	}
	// v4: a release command that outruns [grace] release is stopped by
	// systemd and fails the deployment, saying so; v2 keeps serving.
	writeFiles(t, dir, map[string]string{
		"Procfile":     procfile(`echo "long migration started"; sleep 60; echo never`),
		"jecloud.toml": "app = \"shop\"\n\n[services]\nredis = \"\"\n\n[grace]\nrelease = \"3s\"\n",
	})
	start = time.Now()
	code, out = push(dir, "prod")
	took := time.Since(start)
	if code == 0 {
		t.Fatalf("a push whose release command outran its limit succeeded:\n%s", out)
	}
	contains(t, "the timed-out push's output", out, "ran longer than its limit of 3s and was stopped", "[grace] release", "long migration started")
	if a := readApp(t, srv, "shop", "prod"); a.CurrentVersion != v2 {
		t.Errorf("after a timed-out release command: current %s, want %s", a.CurrentVersion, v2)
	}
	if got := get(); got != "version "+v2 {
		t.Errorf("after the timed-out deploy, GET / = %q, want v2", got)
	}
	if ps, _ := srv.Exec(t.Context(), "pgrep", "-u", "jc-shop_prod", "-f", "sleep 60"); strings.TrimSpace(ps) != "" {
		t.Errorf("the timed-out release command is still running: %s", ps)
	}
	t.Logf("timed-out release command: push failed after %s", took.Round(time.Millisecond))

	// v5: the roll-forward is SIGKILLed while the release command runs
	// (its unit runs on, apart). The next roll-forward stops what is left
	// and runs the command again from the start, then switches.
	const kmark = "/var/cloud/shop/prod/data/killed.log"
	writeFiles(t, dir, map[string]string{
		"Procfile":     procfile(`echo "start $JECLOUD_VERSION" >> ` + kmark + `; sleep 8; echo "done $JECLOUD_VERSION" >> ` + kmark),
		"jecloud.toml": "app = \"shop\"\n\n[services]\nredis = \"\"\n",
	})
	go func() { c, o := push(dir, "prod"); done <- fmt.Sprintf("exit %d\n%s", c, o) }()
	eventually(t, 2*time.Minute, "v5's release command started", func() bool {
		out, _ := srv.Exec(t.Context(), "cat", kmark)
		return strings.Contains(out, "start ")
	})
	srv.MustExec("systemctl", "kill", "--signal=KILL", "jeagent-rollforward.service")
	if st, _ := srv.Exec(t.Context(), "systemctl", "is-active", "jecloud-shop_prod_release.service"); strings.TrimSpace(st) != "active" {
		t.Errorf("the release unit after the agent's kill: %q (want it running on, apart)", st)
	}
	if a := readApp(t, srv, "shop", "prod"); a.Deployment == nil || a.Deployment.State != "releasing" || a.CurrentVersion != v2 {
		t.Fatalf("after the kill: %+v, current %s", a.Deployment, a.CurrentVersion)
	}
	srv.MustExec("jeagent", "rollforward", "--quiet")
	res = <-done
	if !strings.HasPrefix(res, "exit 0") {
		t.Fatalf("v5's push after the kill: %s", res)
	}
	v5 := readApp(t, srv, "shop", "prod").CurrentVersion
	if k := strings.TrimSpace(srv.MustExec("cat", kmark)); k != "start "+v5+"\nstart "+v5+"\ndone "+v5 {
		t.Errorf("the release command after a kill of the agent: %q, want it started twice and finished once", k)
	}
	if got := get(); got != "version "+v5 {
		t.Errorf("after v5, GET / = %q", got)
	}
	t.Logf("summary: release command ran once per deploy (%d runs for 2 good deploys and a restart), as jc-shop_prod with config vars and REDIS_URL, before the switch; a failing one (exit 7) failed the deploy with its last lines: %q", len(markers()), reason)
}

// TestReleaseProcfileOnly: the release command and `jepush run` for an app
// with only a Procfile (Python, no package.json): as the app's user, with
// its config vars and the server's PATH, in the new release, before the
// switch.
func TestReleaseProcfileOnly(t *testing.T) {
	lab.Require(t)
	jeagent, jepush := binaries(t)
	srv := lab.BootWith(t, 1, lab.Options{})[0]
	if err := srv.CopyIn(jeagent, "/usr/local/bin/jeagent"); err != nil {
		t.Fatal(err)
	}
	srv.MustExec("jeagent", "init")
	push := jepushTo(t, jepush, srv)
	const marker = "/var/cloud/py/prod/data/releases.log"
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"app.py":       pyServer,
		"Procfile":     "web: python3 app.py\nrelease: python3 -c 'import os, pwd; print(\"migrated\", os.environ[\"JECLOUD_VERSION\"], pwd.getpwuid(os.getuid()).pw_name, os.environ.get(\"GREETING\"), os.getcwd())' | tee -a " + marker + "\n",
		"jecloud.toml": "app = \"py\"\n",
	})
	srv.MustExec("jeagent", "config:set", "py", "prod", "GREETING=hi there", "--no-restart")
	code, out := push(dir, "prod")
	if code != 0 {
		t.Fatalf("push: exit %d\n%s", code, out)
	}
	v := readApp(t, srv, "py", "prod").CurrentVersion
	want := "migrated " + v + " jc-py_prod hi there /var/cloud/py/prod/source/versions/" + v
	contains(t, "jepush's output", out, want)
	if m := strings.TrimSpace(srv.MustExec("cat", marker)); m != want {
		t.Errorf("marker %q, want %q", m, want)
	}
	// (jepushTo puts --host last, which would be the command's: --host first.)
	home := lab.SSHHome(t, srv)
	cmd := exec.Command(jepush, "run", "prod", "--dir", dir, "--host", "root@"+srv.Addr.String(), "--", "sh", "-c", `id -un; echo "$GREETING $PATH"; exit 4`)
	cmd.Env = append(os.Environ(), "HOME="+home, "SSH_AUTH_SOCK=", "NO_COLOR=1")
	b, _ := cmd.CombinedOutput()
	code, out = cmd.ProcessState.ExitCode(), string(b)
	if code != 4 {
		t.Errorf("jepush run: exit %d, want 4\n%s", code, out)
	}
	contains(t, "jepush run", out, "jc-py_prod\nhi there /usr/local/bin:/usr/bin:/bin\n")
	t.Logf("summary: a Python Procfile app: release command ran as jc-py_prod with its config var in the new release; jepush run: the app's user, its config var, the server's PATH, exit 4")
}
