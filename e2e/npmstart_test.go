//go:build e2e

package e2e_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// npmStartServer reports what the process serving it got: the variable set
// by the start script, its PID, LISTEN_PID and LISTEN_FDS, and what fd 3 is.
const npmStartServer = `const http = require("http");
const fs = require("fs");
const server = http.createServer((req, res) => {
  let fd3 = "";
  try { fd3 = fs.readlinkSync("/proc/self/fd/3"); } catch (e) { fd3 = String(e); }
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ tag: process.env.TAG, pid: process.pid, listenPid: process.env.LISTEN_PID,
    listenFds: process.env.LISTEN_FDS, fd3, version: process.env.JECLOUD_VERSION }) + "\n");
});
` + serveJS

// TestNpmStartSocket (#23): a Node.js app without a Procfile, so its web
// command is the default "npm start", follows docs/node.md's contract
// (fd 3 when LISTEN_FDS is set). It is served: the process systemd started
// is node itself, with the socket as fd 3 and LISTEN_PID its own PID, and
// the start script's text (quotes, %, $, a backslash) reaches it exactly.
// Then a start script through npm is refused before the switch, with the
// reason, and the live version keeps serving.
func TestNpmStartSocket(t *testing.T) {
	srv, jepush, nodeVersion := nodeServer(t)
	major := strings.Split(nodeVersion, ".")[0]
	pkg := func(scripts map[string]string) string {
		b, _ := json.Marshal(map[string]any{"name": "plain", "engines": map[string]string{"node": major + ".x"}, "scripts": scripts})
		return string(b)
	}
	// The shell gives TAG the value 50% $HOME \t' (systemd would have made
	// the %, $HOME and \t its own if the unit did not escape them).
	const script = `TAG='50% $HOME \t'"'" node server.js`
	const tag = `50% $HOME \t'`
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"package.json": pkg(map[string]string{"start": script}),
		"server.js":    npmStartServer,
		"jecloud.toml": "app = \"plain\"\n\n[web]\nsocket = true\n",
	})
	push := jepushTo(t, jepush, srv)
	journal := func() string {
		out, _ := srv.Exec(t.Context(), "sh", "-c", "systemctl cat --no-pager jecloud-plain_prod_web@.service; journalctl -n 30 --no-pager -u 'jecloud-plain_*'")
		return out
	}
	code, out := push(dir, "prod")
	if code != 0 {
		t.Fatalf("push of a Procfile-less app (web: npm start): exit %d\n%s\n%s", code, out, journal())
	}
	contains(t, "the web unit", srv.MustExec("systemctl", "cat", "jecloud-plain_prod_web@.service"),
		`ExecStart=/bin/sh -c 'TAG=\'50%% $$HOME \\t\'"\'" exec node server.js'`)
	v1 := readApp(t, srv, "plain", "prod").CurrentVersion

	type report struct {
		Tag, ListenPid, ListenFds, Fd3, Version string
		Pid                                     int
	}
	get := func() (report, error) {
		var r report
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get("http://" + srv.Addr.String() + ":5000/")
		if err != nil {
			return r, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return r, json.Unmarshal(b, &r)
	}
	r, err := get()
	if err != nil {
		t.Fatalf("GET /: %v\n%s", err, journal())
	}
	mainPID := strings.TrimSpace(srv.MustExec("systemctl", "show", "-p", "MainPID", "--value", "jecloud-plain_prod_web@1.service"))
	comm := strings.TrimSpace(srv.MustExec("cat", "/proc/"+mainPID+"/comm"))
	t.Logf("served by %+v; the unit's main process %s is %q", r, mainPID, comm)
	if r.Tag != tag {
		t.Errorf("TAG = %q, want %q: the start script did not reach /bin/sh as written\n%s", r.Tag, tag, journal())
	}
	if r.Version != v1 || r.ListenFds != "1" || !strings.HasPrefix(r.Fd3, "socket:") {
		t.Errorf("the app did not get the socket: %+v", r)
	}
	if comm != "node" || mainPID != r.ListenPid || r.ListenPid != jsonInt(r.Pid) {
		t.Errorf("the unit's main process %s is %q, LISTEN_PID %s, the app's PID %d: want node itself, named by LISTEN_PID", mainPID, comm, r.ListenPid, r.Pid)
	}

	// A start script through npm: refused in prepare, before the switch.
	writeFiles(t, dir, map[string]string{"package.json": pkg(map[string]string{"start": "npm run serve", "serve": "node server.js"})})
	code, out = push(dir, "prod")
	if code == 0 {
		t.Fatalf("a start script through npm was deployed:\n%s", out)
	}
	contains(t, "the refusal", out, `scripts.start "npm run serve" runs the app through npm`, "[web] socket = true")
	if got := readApp(t, srv, "plain", "prod").CurrentVersion; got != v1 {
		t.Errorf("current version %s after the refusal, want %s still", got, v1)
	}
	if r, err := get(); err != nil || r.Version != v1 {
		t.Errorf("after the refusal: %+v, %v; want %s serving", r, err, v1)
	}
	t.Logf("summary: web: npm start without a Procfile served by node (pid %d, LISTEN_PID %s, fd 3 %s); a start script through npm refused before the switch", r.Pid, r.ListenPid, r.Fd3)
}

func jsonInt(n int) string { b, _ := json.Marshal(n); return string(b) }
