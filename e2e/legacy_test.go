//go:build e2e

package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/lab"
)

// beforeNames is the last commit that named users jc-APP-ENV and units
// jecloud-APP-ENV-* (issue #17).
const beforeNames = "8ff9680"

// oldJeagent builds jeagent as of beforeNames.
func oldJeagent(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	archive := exec.Command("sh", "-c", "git archive "+beforeNames+" | tar -x -C "+src)
	archive.Dir = repoRoot()
	if out, err := archive.CombinedOutput(); err != nil {
		t.Skipf("no %s to build the old jeagent from: %v %s", beforeNames, err, out)
	}
	bin := filepath.Join(t.TempDir(), "jeagent")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "urfave_cli_no_docs", "-o", bin, "./agent")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build the old jeagent: %v\n%s", err, out)
	}
	return bin
}

// TestLegacyNamesUpgrade (issue #17): a server deployed by a jeagent that
// named users jc-APP-ENV and units jecloud-APP-ENV-* keeps working after the
// upgrade: the app keeps its user (whose comment names it), its legacy
// units run and `jeagent ps` shows them until its next deploy, which moves
// them to jecloud-APP_ENV_* and stops exactly the old ones: shop/prod-eu's
// units, whose names start like shop/prod's, go on running.
func TestLegacyNamesUpgrade(t *testing.T) {
	lab.Require(t)
	jeagent, jepush := binaries(t)
	old := oldJeagent(t)
	srv := lab.Boot(t, 1)[0]
	if err := srv.CopyIn(old, "/usr/local/bin/jeagent"); err != nil {
		t.Fatal(err)
	}
	srv.MustExec("jeagent", "init")
	major := strings.Split(installMirror(t, srv), ".")[0]
	push := jepushTo(t, jepush, srv)
	dir := t.TempDir()
	pkg, _ := json.Marshal(map[string]any{"name": "shop", "engines": map[string]string{"node": major + ".x"}})
	writeFiles(t, dir, map[string]string{
		"package.json": string(pkg), "server.js": probeServer, "Procfile": "web: node server.js\n",
		"jecloud.toml": "app = \"shop\"\n",
	})
	journal := func() string {
		out, _ := srv.Exec(t.Context(), "sh", "-c", "journalctl -n 40 --no-pager -u 'jecloud-*'")
		return out
	}
	for _, env := range []string{"prod", "prod-eu"} {
		if code, out := push(dir, env); code != 0 {
			t.Fatalf("old jeagent: push shop/%s: exit %d\n%s\n%s", env, code, out, journal())
		}
	}
	mainPID := func(unit string) string {
		return strings.TrimSpace(srv.MustExec("systemctl", "show", "-p", "MainPID", "--value", unit))
	}
	euPID := mainPID("jecloud-shop-prod-eu-web@1.service")
	if euPID == "0" {
		t.Fatalf("the old jeagent did not start jecloud-shop-prod-eu-web@1\n%s", journal())
	}

	// The upgrade: nothing moves until a deploy.
	if err := srv.CopyIn(jeagent, "/usr/local/bin/jeagent"); err != nil {
		t.Fatal(err)
	}
	ps := srv.MustExec("jeagent", "ps", "shop", "prod", "--json")
	contains(t, "jeagent ps shop prod after the upgrade", ps, "jecloud-shop-prod-web@1.service")
	if strings.Contains(ps, "prod-eu") {
		t.Errorf("jeagent ps shop prod lists shop/prod-eu's units:\n%s", ps)
	}

	// shop/prod's next deploy: its user stays, its units get the new names.
	writeFiles(t, dir, map[string]string{"VERSION": "2\n"})
	code, out := push(dir, "prod")
	if code != 0 {
		t.Fatalf("new jeagent: redeploy shop/prod: exit %d\n%s\n%s", code, out, journal())
	}
	t.Logf("the deploy that renamed the units:\n%s", out)
	webU := webUnit(t, srv, "shop", "prod")
	if p := mainPID(webU); p == "0" {
		t.Errorf("%s is not running\n%s", webU, journal())
	}
	contains(t, "the web unit", srv.MustExec("systemctl", "cat", webU), "User=jc-shop-prod\n")
	if out, err := srv.Exec(t.Context(), "ls", "/etc/systemd/system/jecloud-shop-prod-web@.service"); err == nil {
		t.Errorf("the legacy unit file is still there: %s", out)
	}
	if act, _ := srv.Exec(t.Context(), "systemctl", "is-active", "jecloud-shop-prod-web@1.service"); strings.TrimSpace(act) == "active" {
		t.Error("the legacy unit jecloud-shop-prod-web@1 still runs")
	}
	if now := mainPID("jecloud-shop-prod-eu-web@1.service"); now != euPID {
		t.Errorf("moving shop/prod's units touched shop/prod-eu's: pid %s, now %s\n%s", euPID, now, journal())
	}
	// The server has no front door (the old jeagent's init installed none):
	// the web process binds ports.json's port itself.
	var ports map[string]int
	b, _ := srv.ReadFile("/var/cloud/shop/prod/ports.json")
	json.Unmarshal(b, &ports)
	served := srv.MustExec("curl", "-sS", fmt.Sprintf("http://127.0.0.1:%d/", ports["web"]))
	contains(t, "shop/prod after the move", served, `"user":"jc-shop-prod"`, `"wrote":"ok"`)
	srv.MustExec("jeagent", "config:set", "shop", "prod", "A=1", "--no-restart")
	contains(t, "config.env", srv.MustExec("stat", "-c", "%a %U %G", "/var/cloud/shop/prod/config.env"), "640 root jc-shop-prod")
	t.Logf("summary: upgraded server: shop/prod kept user jc-shop-prod; its units moved to jecloud-shop_prod_* at its next deploy; shop/prod-eu's legacy unit kept running (pid %s)", euPID)
}
