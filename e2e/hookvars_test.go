//go:build e2e

package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// hookVarsServer answers with the variables the test looks for.
const hookVarsServer = `const http = require("http");
http.createServer((req, res) => {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ fromHook: process.env.FROM_HOOK || "", token: process.env.API_TOKEN || "",
    overridden: process.env.OVERRIDDEN || "", version: process.env.JECLOUD_VERSION }) + "\n");
}).listen(process.env.PORT);
`

// TestHookVars (issue #20 §7): a user hook in hooks.d returns variables in
// the prepare phase (docs/hooks.md); the app's processes get them, a config
// var of the same name wins over the hook's, and the value is nowhere in
// the unit files (which every user of the server can read): it is in the
// release's vars file, root's only.
func TestHookVars(t *testing.T) {
	srv, jepush, nodeVersion := nodeServer(t)
	major := strings.Split(nodeVersion, ".")[0]
	hookScript := "#!/bin/sh\n[ \"$1\" = prepare ] || exit 0\n" +
		`printf '{"vars": {"FROM_HOOK": "prepared %s", "API_TOKEN": "tok-9f3a", "OVERRIDDEN": "by the hook"}}\n' "$JECLOUD_VERSION"` + "\n"
	if err := srv.WriteFile("/var/cloud/sys/hooks.d/10-vars", []byte(hookScript), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pkg, _ := json.Marshal(map[string]any{"name": "hv", "engines": map[string]string{"node": major + ".x"}})
	writeFiles(t, dir, map[string]string{
		"package.json": string(pkg), "server.js": hookVarsServer, "Procfile": "web: node server.js\n",
		"jecloud.toml": "app = \"hv\"\n",
	})
	push := jepushTo(t, jepush, srv)
	if code, out := push("config:set", "prod", "OVERRIDDEN=by config:set", "--dir", dir); code != 0 {
		t.Fatalf("config:set: exit %d\n%s", code, out)
	}
	if code, out := push(dir, "prod"); code != 0 {
		t.Fatalf("push: exit %d\n%s", code, out)
	}
	v := readApp(t, srv, "hv", "prod").CurrentVersion
	type report struct{ FromHook, Token, Overridden, Version string }
	var r report
	eventually(t, 15*time.Second, "the app on the bare address", func() bool {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get("http://" + srv.Addr.String() + "/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return json.Unmarshal(b, &r) == nil && r.Version == v
	})
	t.Logf("the app sees %+v", r)
	if want := "prepared " + v; r.FromHook != want || r.Token != "tok-9f3a" {
		t.Errorf("the app got FROM_HOOK=%q API_TOKEN=%q; want %q and the token (the hook's vars)", r.FromHook, r.Token, want)
	}
	if r.Overridden != "by config:set" {
		t.Errorf("OVERRIDDEN=%q: a config var must win over a hook's var", r.Overridden)
	}
	units := srv.MustExec("sh", "-c", "cat /etc/systemd/system/jecloud-hv_prod_*")
	if strings.Contains(units, "tok-9f3a") {
		t.Errorf("the hook's var is in a unit file, which every user can read:\n%s", units)
	}
	file := fmt.Sprintf("/var/cloud/hv/prod/source/versions/%s.vars.env", v)
	contains(t, "the unit file", units, "EnvironmentFile=-"+file)
	contains(t, "the vars file's mode", srv.MustExec("stat", "-c", "%a %U", file), "600 root")
}
