//go:build e2e

package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/lab"
)

// TestFrontDoorCommands: jepush's front-door verbs over SSH against a real
// server and its real Caddy. domains:add routes a host name (and refuses
// one another app holds, naming it, and an invalid one before connecting);
// maintenance:on answers 503 with the release's maintenance.html (or the
// built-in page) while the other app is served and the app keeps running;
// logs --proxy shows those requests; domains:remove stops the routing.
func TestFrontDoorCommands(t *testing.T) {
	lab.Require(t)
	jeagent, jepush := binaries(t)
	srv := lab.Boot(t, 1)[0]
	if err := srv.CopyIn(jeagent, "/usr/local/bin/jeagent"); err != nil {
		t.Fatal(err)
	}
	srv.MustExec("jeagent", "init")
	nodeVersion := installMirror(t, srv)
	major := strings.Split(nodeVersion, ".")[0]
	push := jepushTo(t, jepush, srv)
	get := func(host string) (int, string) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", srv.Addr.String()+":80")
			},
		}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get("http://" + host + "/")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const page = "<h1>shop is being upgraded</h1>"
	dirs := map[string]string{}
	for _, app := range []string{"shop", "blog"} {
		dir := t.TempDir()
		dirs[app] = dir
		pkg, _ := json.Marshal(map[string]any{"name": app, "engines": map[string]string{"node": major + ".x"}})
		files := map[string]string{
			"package.json": string(pkg), "server.js": stockServer, "Procfile": "web: node server.js\n",
			"jecloud.toml": fmt.Sprintf("app = %q\n\n[web]\nsocket = false\n", app),
		}
		if app == "shop" {
			files["maintenance.html"] = page
		}
		writeFiles(t, dir, files)
		if code, out := push(dir, "prod"); code != 0 {
			t.Fatalf("jepush %s: exit %d\n%s", app, code, out)
		}
	}
	step := func(app string, want int, contains string, args ...string) string {
		t.Helper()
		code, out := push(append(args, "--dir", dirs[app])...)
		if code != want || !strings.Contains(out, contains) {
			t.Errorf("jepush %s (%s): exit %d, want %d and %q\n%s", strings.Join(args, " "), app, code, want, contains, out)
		}
		return out
	}
	served := func(what, host string, code int, body string) {
		t.Helper()
		eventually(t, 15*time.Second, what, func() bool {
			c, b := get(host)
			return c == code && strings.Contains(b, body)
		})
	}

	step("shop", 0, "shop/prod: added shop.example.com", "domains:add", "prod", "shop.example.com")
	step("blog", 0, "blog/prod: added blog.example.com", "domains:add", "prod", "blog.example.com")
	served("shop.example.com routed to shop", "shop.example.com", 200, "shop/prod shop.example.com")
	served("blog.example.com routed to blog", "blog.example.com", 200, "blog/prod blog.example.com")
	step("blog", 1, `host name "shop.example.com" is held by shop/prod on this server`, "domains:add", "prod", "shop.example.com")
	step("blog", 2, `invalid host name "Shop.example.com": use lowercase`, "domains:add", "prod", "Shop.example.com")
	out := step("shop", 0, "shop.example.com", "domains", "prod")
	t.Logf("jepush domains prod:\n%s", out)

	// Maintenance: the release's page for shop, the built-in one for blog;
	// the other app is served meanwhile, and shop's process keeps running.
	pid := srv.MustExec("systemctl", "show", "-p", "MainPID", "--value", "jecloud-shop_prod_web@1.service")
	step("shop", 0, "shop/prod: maintenance on", "maintenance:on", "prod")
	served("shop in maintenance", "shop.example.com", 503, page)
	if c, b := get("blog.example.com"); c != 200 {
		t.Errorf("blog during shop's maintenance: %d %q", c, b)
	}
	if st := srv.MustExec("jeagent", "status", "shop", "prod"); !strings.Contains(st, "maintenance: ON") {
		t.Errorf("jeagent status:\n%s", st)
	}
	step("blog", 0, "blog/prod: maintenance on", "maintenance:on", "prod")
	served("blog in maintenance, the built-in page", "blog.example.com", 503, "")
	step("shop", 0, "shop/prod: maintenance off", "maintenance:off", "prod")
	served("shop back", "shop.example.com", 200, "shop/prod shop.example.com")
	if after := srv.MustExec("systemctl", "show", "-p", "MainPID", "--value", "jecloud-shop_prod_web@1.service"); after != pid {
		t.Errorf("shop's web process changed during maintenance: %s, then %s", strings.TrimSpace(pid), strings.TrimSpace(after))
	}
	step("blog", 0, "blog/prod: maintenance off", "maintenance:off", "prod")

	// The access log of shop alone: its 200s and 503s, none of blog's.
	out = step("shop", 0, "GET shop.example.com / 503", "logs", "prod", "--proxy", "-n", "50")
	t.Logf("jepush logs prod --proxy:\n%s", out)
	if !strings.Contains(out, "GET shop.example.com / 200") || strings.Contains(out, "blog.example.com") {
		t.Errorf("shop's access log has not its own requests only")
	}
	var times []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasSuffix(f[0], "Z") {
			times = append(times, f[0])
		}
	}
	if !slices.IsSorted(times) || len(times) < 3 {
		t.Errorf("access log lines not oldest first: %v", times)
	}
	step("shop", 0, `"logger":"http.log.access.shop_prod"`, "logs", "prod", "--proxy", "--json", "-n", "1")
	// The app's own lines, filtered by journalctl (#20 §4): its web
	// instances' lines that match, from the last hour; a pattern that
	// matches nothing is no error.
	out = step("shop", 0, "Started", "logs", "prod", "--type", "web", "--grep", "started", "--since", "1 hour ago", "-n", "20")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(l, "web@") || !strings.Contains(strings.ToLower(l), "started") {
			t.Errorf("logs --type web --grep started: line %q", l)
		}
	}
	step("shop", 0, "shop/prod: the journal has no lines of process type worker (jecloud-shop_prod_worker@*)", "logs", "prod", "--type", "worker", "--since", "1 hour ago")
	step("shop", 0, "", "logs", "prod", "--grep", "no line says this 7f3e", "--since", "today")
	// Followed: the last 2, then a request made meanwhile, once.
	followed := make(chan string)
	go func() {
		out, _ := srv.Exec(context.Background(), "timeout", "6", "jeagent", "logs", "shop", "prod", "--proxy", "-f", "-n", "2")
		followed <- out
	}()
	time.Sleep(3 * time.Second)
	get("shop.example.com/followed")
	out = <-followed
	t.Logf("jeagent logs shop prod --proxy -f -n 2 (a request after 3 s):\n%s", out)
	if strings.Count(out, "GET shop.example.com /followed/ 200") != 1 || strings.Count(out, "\n") != 3 {
		t.Errorf("followed access log: want the last 2 and the new request once")
	}

	// Removed: the name is no longer shop's.
	step("shop", 0, "shop/prod: removed shop.example.com", "domains:remove", "prod", "shop.example.com")
	eventually(t, 15*time.Second, "shop.example.com no longer routed to shop", func() bool {
		_, b := get("shop.example.com")
		return !strings.Contains(b, "shop/prod")
	})
	t.Logf("summary: front door commands on a real server: domains:add routed 2 names (a held one and an invalid one refused), maintenance 503 with the release's page and the built-in one while the other app served and the web process kept its pid, logs --proxy showed the app's own requests, domains:remove unrouted")
}
