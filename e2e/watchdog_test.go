//go:build e2e

package e2e_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestWatchdog (issue #22 §4): a release that exits 30 s after it starts
// passes its deploy (health check and soak), then crash-loops; the agent's
// watchdog, run by the roll-forward timer, rolls back to the release before
// it by itself, and jepush releases and jeagent status say why.
func TestWatchdog(t *testing.T) {
	t.Parallel() // mostly waiting (docs/lab.md: lab tests in parallel)
	srv, jepush, nodeVersion := nodeServer(t)
	major := strings.Split(nodeVersion, ".")[0]
	pkg, _ := json.Marshal(map[string]any{"name": "wd", "engines": map[string]string{"node": major + ".x"}})
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"package.json": string(pkg), "Procfile": "web: node server.js\n",
		"jecloud.toml": "app = \"wd\"\n\n[watchdog]\nwindow = \"10m\"\nrestarts = 0\n",
		"server.js":    `require("http").createServer((q, s) => s.end("release 1\n")).listen(process.env.PORT);` + "\n",
	})
	push := jepushTo(t, jepush, srv)
	if code, out := push(dir, "prod"); code != 0 {
		t.Fatalf("push v1: exit %d\n%s", code, out)
	}
	v1 := readApp(t, srv, "wd", "prod").CurrentVersion
	writeFiles(t, dir, map[string]string{"server.js": `require("http").createServer((q, s) => s.end("release 2\n")).listen(process.env.PORT);
setTimeout(() => { console.error("giving up after 30 s"); process.exit(1); }, 30000);
`})
	start := time.Now()
	if code, out := push(dir, "prod"); code != 0 {
		t.Fatalf("push v2 (it exits only after 30 s): exit %d\n%s", code, out)
	}
	v2 := readApp(t, srv, "wd", "prod").CurrentVersion
	if v2 == v1 {
		t.Fatal("v2 did not go live")
	}
	if st := srv.MustExec("jeagent", "status", "wd", "prod"); !strings.Contains(st, "watchdog:") {
		t.Errorf("jeagent status during the window:\n%s", st)
	}
	eventually(t, 4*time.Minute, "the watchdog rolls back to v1", func() bool {
		return readApp(t, srv, "wd", "prod").CurrentVersion == v1
	})
	t.Logf("rolled back %s after v2 went live", time.Since(start).Round(time.Second))
	code, out := push("releases", "prod", "--dir", dir)
	if code != 0 || !strings.Contains(out, "crash loop: its processes restarted") || !strings.Contains(out, "rolled back to "+v1) {
		t.Errorf("jepush releases: exit %d\n%s", code, out)
	}
	t.Logf("jepush releases prod:\n%s", out)
	if got := srv.MustExec("curl", "-s", "http://127.0.0.1/"); got != "release 1\n" {
		t.Errorf("served after the rollback: %q", got)
	}
}
