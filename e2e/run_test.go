//go:build e2e

package e2e_test

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/lab"
	"github.com/jecloud/jecloud/internal/shellquote"
)

// TestRunOneOff (#20 §3): `jepush run ENV -- CMD ARGS...` runs in the live
// release as the app's user with its environment, in a transient unit,
// over SSH: plain streams without a terminal (stdout, stdin piped through,
// the exit status), arguments exactly as given, and on a terminal a TTY
// of its own with the terminal's size, its changes, and Ctrl-C.
func TestRunOneOff(t *testing.T) {
	srv, jepush, nodeVersion := nodeServer(t)
	major := strings.Split(nodeVersion, ".")[0]
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"package.json": `{"name": "shop", "engines": {"node": "` + major + `.x"}}`,
		"server.js":    releaseServer,
		"Procfile":     "web: node server.js\n",
		"jecloud.toml": "app = \"shop\"\n\n[limits.web]\ntasks = 100\n",
	})
	push := jepushTo(t, jepush, srv)
	if code, out := push(dir, "prod"); code != 0 {
		t.Fatalf("push: exit %d\n%s", code, out)
	}
	v := readApp(t, srv, "shop", "prod").CurrentVersion
	if code, out := push("config:set", "prod", "GREETING=hello there", "--dir", dir); code != 0 {
		t.Fatalf("config:set: exit %d\n%s", code, out)
	}
	home := lab.SSHHome(t, srv)
	// jepushIn runs jepush run with stdin and separate stdout and stderr.
	jepushIn := func(stdin string, argv ...string) (int, string, string) {
		cmd := exec.Command(jepush, append([]string{"run", "prod", "--dir", dir, "--host", "root@" + srv.Addr.String(), "--"}, argv...)...)
		cmd.Env = append(os.Environ(), "HOME="+home, "SSH_AUTH_SOCK=", "NO_COLOR=1")
		cmd.Stdin = strings.NewReader(stdin)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, o.String(), e.String()
	}

	// The example of the issue: output, and exit 3 as jepush's.
	code, out, errOut := jepushIn("", "sh", "-c", `echo "port=$PORT"; id -un; pwd; echo "$GREETING"; echo "$NODE_ENV $(node --version)"; echo oops >&2; exit 3`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 3 || len(lines) != 5 {
		t.Fatalf("jepush run: exit %d (want 3)\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if port, err := strconv.Atoi(strings.TrimPrefix(lines[0], "port=")); err != nil || port <= 0 {
		t.Errorf("PORT: %q", lines[0])
	}
	want := []string{"jc-shop_prod", "/var/cloud/shop/prod/source/versions/" + v, "hello there", "production v" + nodeVersion}
	if strings.Join(lines[1:], "\n") != strings.Join(want, "\n") {
		t.Errorf("jepush run printed\n%s\nwant (after PORT)\n%s", out, strings.Join(want, "\n"))
	}
	contains(t, "stderr", errOut, "oops")

	// stdin is piped through; the exit status 0 is jepush's.
	if code, out, errOut := jepushIn("hi\nthere\n", "cat"); code != 0 || out != "hi\nthere\n" {
		t.Errorf("echo hi | jepush run prod -- cat: exit %d, %q (stderr %q)", code, out, errOut)
	}
	// Hostile arguments arrive as they are: no shell on the server.
	hostile := []string{"$HOME", "a b", "it's", "$(id)", "`id`", ";rm -rf /", "%n", `"q"`, `\n`, "--property=User=root"}
	if code, out, errOut := jepushIn("", append([]string{"printf", "%s|"}, hostile...)...); code != 0 || out != strings.Join(hostile, "|")+"|" {
		t.Errorf("arguments: exit %d, got %q, want %q (stderr %q)", code, out, strings.Join(hostile, "|")+"|", errOut)
	}
	// The sandbox and limits of the web units, in a transient unit.
	done := make(chan string, 1)
	go func() {
		_, out, _ := jepushIn("", "sh", "-c", `cat /var/cloud/sys/server.json; echo "rc=$?"; cat /proc/self/cgroup; sleep 4`)
		done <- out
	}()
	var props string
	eventually(t, time.Minute, "the one-off's unit", func() bool {
		props, _ = srv.Exec(t.Context(), "sh", "-c", `for u in $(systemctl list-units --no-legend --plain 'jecloud-shop_prod_run-*' | awk '{print $1}'); do systemctl show -p Id,User,TasksMax,NoNewPrivileges,ProtectSystem,MemoryMax $u; done`)
		return strings.Contains(props, "TasksMax")
	})
	contains(t, "the one-off's unit", props, "User=jc-shop_prod", "TasksMax=100", "NoNewPrivileges=yes", "ProtectSystem=strict")
	contains(t, "the one-off's sandbox", <-done, "rc=1", "/system.slice/jecloud-shop_prod_run-")
	// Without a terminal, Ctrl-C stops jepush; the command does not run on:
	// the agent sees its SSH session gone and stops the unit.
	{
		cmd := exec.Command(jepush, "run", "prod", "--dir", dir, "--host", "root@"+srv.Addr.String(), "--", "sh", "-c", "echo started; exec sleep 120")
		cmd.Env = append(os.Environ(), "HOME="+home, "SSH_AUTH_SOCK=", "NO_COLOR=1")
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		n, _ := stdout.Read(buf)
		if !strings.Contains(string(buf[:n]), "started") {
			t.Fatalf("jepush run ... sleep: read %q", buf[:n])
		}
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		start := time.Now()
		eventually(t, 30*time.Second, "the one-off unit stopped after jepush's Ctrl-C", func() bool {
			out, _ := srv.Exec(t.Context(), "sh", "-c", "systemctl list-units --no-legend --plain 'jecloud-shop_prod_run-*'; pgrep -u jc-shop_prod -x sleep || true")
			return strings.TrimSpace(out) == ""
		})
		t.Logf("Ctrl-C without a terminal: the command was stopped %s after jepush ended", time.Since(start).Round(time.Millisecond))
	}
	// A command that does not exist: the shell says so, exit 127.
	if code, _, errOut := jepushIn("", "no-such-command"); code != 127 {
		t.Errorf("a missing command: exit %d (want 127), stderr %q", code, errOut)
	}

	// On a terminal (script gives jepush one): a TTY of the server's with
	// the terminal's size, a resize followed, Ctrl-C delivered.
	script := func(input, inner string) (int, string) {
		line := shellquote.Join([]string{jepush, "run", "prod", "--dir", dir, "--host", "root@" + srv.Addr.String(), "--", "sh", "-c", inner})
		cmd := exec.Command("script", "-qec", "stty rows 30 cols 100; (sleep 3; stty rows 40 cols 120 </dev/tty) & exec "+line, "/dev/null")
		cmd.Env = append(os.Environ(), "HOME="+home, "SSH_AUTH_SOCK=", "NO_COLOR=1", "TERM=xterm")
		pr, pw, _ := os.Pipe()
		cmd.Stdin = pr
		go func() {
			time.Sleep(6 * time.Second)
			pw.WriteString(input)
			time.Sleep(10 * time.Second)
			pw.Close()
		}()
		b, err := cmd.CombinedOutput()
		pr.Close()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(b)
	}
	code, out = script("", `tty; stty size; sleep 5; stty size; exit 5`)
	if code != 5 {
		t.Errorf("on a terminal: exit %d, want 5\n%s", code, out)
	}
	contains(t, "on a terminal", out, "/dev/pts/", "30 100", "40 120")
	code, out = script("\x03", `trap 'echo got SIGINT; exit 9' INT; echo waiting; sleep 30 & wait; echo not interrupted`)
	if code != 9 || !strings.Contains(out, "got SIGINT") {
		t.Errorf("Ctrl-C on a terminal: exit %d, want 9 and \"got SIGINT\"\n%s", code, out)
	}
	if units := srv.MustExec("sh", "-c", "systemctl list-units --all --no-legend 'jecloud-shop_prod_run-*' || true"); strings.TrimSpace(units) != "" {
		t.Errorf("one-off units left:\n%s", units)
	}
	// Through sudo, as a deploy user who may run jeagent as root and
	// nothing else: run works, as the app's user, and is no way to root.
	srv.MustExec("sh", "-c", "useradd -m deployer && echo 'deployer ALL=(root) NOPASSWD: /usr/local/bin/jeagent' > /etc/sudoers.d/deployer && chmod 440 /etc/sudoers.d/deployer")
	const mark = "/root/ran-as-root"
	asDeployer := func(script string) (string, error) {
		return srv.Exec(t.Context(), "runuser", "-u", "deployer", "--", "sh", "-c", script)
	}
	if out, err := asDeployer("sudo -n jeagent run shop prod -- id -un"); err != nil || strings.TrimSpace(out) != "jc-shop_prod" {
		t.Errorf("sudo jeagent run ... id -un: %v %q", err, out)
	}
	for _, a := range []string{
		"sudo -n jeagent run shop prod -- sh -c 'touch " + mark + "; id -u'",
		"sudo -n jeagent run shop prod -- sudo -n touch " + mark,
		"sudo -n jeagent run shop prod -- +/usr/bin/touch " + mark,
		"sudo -n jeagent run shop prod -- --property=User=root /usr/bin/touch " + mark,
		"sudo -n jeagent run shop prod --root /home/deployer -- /usr/bin/touch " + mark,
		"sudo -n jeagent run shop prod -- /usr/bin/systemd-run --pipe --wait touch " + mark,
	} {
		out, _ := asDeployer(a)
		if _, err := srv.Exec(t.Context(), "test", "-e", mark); err == nil {
			t.Fatalf("%s: ran as root\n%s", a, out)
		}
		if strings.TrimSpace(out) == "0" {
			t.Errorf("%s: uid 0", a)
		}
	}
	t.Logf("summary: jepush run over SSH: exit status passed on (3, 0, 127), stdin piped, 10 hostile arguments intact, the app's user, env, Node.js and web limits (tasks 100) in a transient unit; on a terminal: a TTY sized 30x100, resized to 40x120, Ctrl-C delivered (exit 9); without one, Ctrl-C of jepush stops the command; through sudo as a deploy user: the app's user, 6 attempts at root refused")
}
