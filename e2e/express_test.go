//go:build e2e

package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/lab"
)

// npmTools is where scripts/setup.sh installs Verdaccio and express-generator.
const npmTools = "/var/cache/jecloud-tools/npm/node_modules"

// TestExpressApp (issue #20 §8): an app nobody here wrote the code of, a stock
// Express app as express-generator makes it, with its package-lock.json and
// real dependencies, deployed to a lab server whose npm installs go to an npm
// registry cache on the test host (Verdaccio, uplinked to npm's own registry,
// named by server.json's node.npm_registry). It is served, and redeployed
// under load with no request failing.
func TestExpressApp(t *testing.T) {
	t.Parallel() // mostly waiting (docs/lab.md: lab tests in parallel)
	verdaccio := filepath.Join(npmTools, ".bin", "verdaccio")
	gen := filepath.Join(npmTools, "express-generator", "bin", "express-cli.js")
	for _, p := range []string{verdaccio, gen} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%v (scripts/setup.sh installs Verdaccio and express-generator)", err)
		}
	}
	srv, jepush, nodeVersion := nodeServer(t)
	major := strings.Split(nodeVersion, ".")[0]

	// The registry cache, on the host's end of the server's veth: only the
	// lab server (and the host) reach it.
	uplink, err := exec.Command("npm", "config", "get", "registry").Output()
	if err != nil {
		t.Fatal(err)
	}
	vdir := t.TempDir()
	l, err := net.Listen("tcp", srv.HostAddr.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	registry := "http://" + addr + "/"
	cfg := fmt.Sprintf("storage: %s\nuplinks:\n  npmjs:\n    url: %s\npackages:\n  '**':\n    access: $all\n    proxy: npmjs\nlog: {type: stdout, format: pretty, level: warn}\n",
		filepath.Join(vdir, "storage"), strings.TrimSpace(string(uplink)))
	os.WriteFile(filepath.Join(vdir, "config.yaml"), []byte(cfg), 0o644)
	v := exec.Command(verdaccio, "--config", filepath.Join(vdir, "config.yaml"), "--listen", addr)
	vlog, _ := os.Create(filepath.Join(vdir, "verdaccio.log"))
	v.Stdout, v.Stderr = vlog, vlog
	if err := v.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Process.Kill(); v.Wait() })
	eventually(t, 30*time.Second, "Verdaccio answers", func() bool {
		resp, err := http.Get(registry + "-/ping")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})

	// The app, as express-generator makes it; its lockfile resolved
	// through the cache (npm writes no registry URLs into it).
	dir := filepath.Join(t.TempDir(), "myapp")
	if out, err := exec.Command("node", gen, "--no-view", dir).CombinedOutput(); err != nil {
		t.Fatalf("express-generator: %v\n%s", err, out)
	}
	npm := exec.Command("npm", "install", "--package-lock-only", "--no-audit", "--no-fund", "--registry", registry)
	npm.Dir = dir
	if out, err := npm.CombinedOutput(); err != nil {
		b, _ := os.ReadFile(filepath.Join(vdir, "verdaccio.log"))
		t.Fatalf("npm install --package-lock-only: %v\n%s\n%s", err, out, b)
	}
	var pkg map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "package.json"))
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	pkg["engines"] = map[string]string{"node": major + ".x"} // the lab's mirror has the host's Node.js
	b, _ = json.MarshalIndent(pkg, "", "  ")
	writeFiles(t, dir, map[string]string{"package.json": string(b), ".gitignore": "node_modules\n"})
	t.Logf("express-generator's package.json, engines added: %s", b)

	srv.MustExec("python3", "-c", `import json, sys
p = "/var/cloud/sys/server.json"
d = json.load(open(p))
d.setdefault("node", {})["npm_registry"] = sys.argv[1]
json.dump(d, open(p, "w"), indent=2)`, registry)
	push := jepushTo(t, jepush, srv)
	code, out := push(dir, "prod")
	if code != 0 {
		b, _ := os.ReadFile(filepath.Join(vdir, "verdaccio.log"))
		t.Fatalf("push of the Express app: exit %d\n%s\nverdaccio:\n%s", code, out, b)
	}
	contains(t, "the push", out, "npm registry: "+registry)
	// The server's npm fetched the packages through the cache.
	if _, err := os.Stat(filepath.Join(vdir, "storage", "express")); err != nil {
		t.Errorf("Verdaccio holds no express package: the server's npm did not go through it (%v)", err)
	}
	get := func() (int, string) {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get("http://" + srv.Addr.String() + "/")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if c, body := get(); c != 200 || !strings.Contains(body, "Welcome to Express") {
		t.Fatalf("GET /: %d %q", c, body)
	}
	if c, body := get(); c != 200 {
		t.Errorf("GET / again: %d %q", c, body)
	}
	// A one-off process in the live release: its dependencies are there.
	run := exec.Command(jepush, "run", "prod", "--dir", dir, "--host", "root@"+srv.Addr.String(), "--",
		"node", "-e", `console.log("express " + require("express/package.json").version + " as " + require("os").userInfo().username)`)
	run.Env = append(os.Environ(), "HOME="+lab.SSHHome(t, srv), "SSH_AUTH_SOCK=", "NO_COLOR=1")
	runOut, err := run.CombinedOutput()
	if err != nil || !strings.Contains(string(runOut), "express 4.") || !strings.Contains(string(runOut), " as jc-myapp_prod") {
		t.Errorf("jepush run prod -- node -e ...: %v\n%s", err, runOut)
	}
	t.Logf("jepush run prod -- node -e ...: %s", strings.TrimSpace(string(runOut)))

	// Redeployed under load: a change to its page.
	idx := filepath.Join(dir, "public", "index.html")
	b, _ = os.ReadFile(idx)
	os.WriteFile(idx, []byte(strings.Replace(string(b), "Welcome to Express", "Welcome to Express, release 2", 1)), 0o644)
	r := underLoad(t, srv.Addr.String()+":80", srv.Addr.String(), 8, 10000, func() { code, out = push(dir, "prod") })
	t.Logf("redeploy of the Express app under load: %s", r)
	if code != 0 {
		t.Fatalf("redeploy: exit %d\n%s", code, out)
	}
	if r.failed != 0 || r.ok < 10000 {
		t.Errorf("%d ok, %d failed: %v", r.ok, r.failed, r.errors)
	}
	if c, body := get(); c != 200 || !strings.Contains(body, "release 2") {
		t.Errorf("after the redeploy: %d %q", c, body)
	}
}
