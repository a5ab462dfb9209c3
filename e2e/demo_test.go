//go:build e2e

package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/lab"
)

// TestDemo is the README's main job: a fresh Debian server (a lab
// container with systemd), `jeagent init` on it, `jepush examples/hello`
// over SSH, and the URL where the app answers. With JECLOUD_DEMO_HOLD=1 the
// server stays up until Ctrl-C, so that you can open the URL yourself.
func TestDemo(t *testing.T) {
	lab.Require(t)
	jeagent, jepush := binaries(t)
	srv := lab.Boot(t, 1)[0]
	say := func(format string, args ...any) { fmt.Printf("demo: "+format+"\n", args...) }
	say("server %s booted at %s (Debian bookworm, systemd, sshd)", srv.Name, srv.Addr)
	if err := srv.CopyIn(jeagent, "/usr/local/bin/jeagent"); err != nil {
		t.Fatal(err)
	}
	say("jeagent init: %s", strings.TrimSpace(srv.MustExec("jeagent", "init")))
	nodeVersion := installMirror(t, srv)
	say("Node.js %s offered to the server from a local mirror (/srv/node-mirror)", nodeVersion)

	home := lab.SSHHome(t, srv)
	cmd := exec.Command(jepush, filepath.Join(repoRoot(), "examples", "hello"), "demo", "--host", "root@"+srv.Addr.String())
	cmd.Env = append(os.Environ(), "HOME="+home, "SSH_AUTH_SOCK=")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	say("jepush examples/hello demo --host root@%s", srv.Addr)
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("jepush: %v", err)
	}
	url := fmt.Sprintf("http://%s/", srv.Addr) // the front door, port 80
	var body string
	eventually(t, 10*time.Second, "the app answers at "+url, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == 200
	})
	served := time.Since(start)
	fmt.Println()
	fmt.Print(srv.MustExec("jeagent", "status"))
	fmt.Println()
	say("examples/hello is served at %s (%.1f s from jepush to served)", url, served.Seconds())
	say("GET %s -> %s", url, strings.TrimSpace(body))
	if !strings.Contains(body, "hello from JeCloud") {
		t.Errorf("unexpected answer: %q", body)
	}
	if os.Getenv("JECLOUD_DEMO_HOLD") == "1" {
		say("the server stays up: try  curl %s  ; Ctrl-C stops it", url)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		<-ctx.Done()
	}
}
