//go:build e2e

package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/lab"
)

// BenchmarkDeltaPushLab is the wall time of small pushes on the lab
// network (issue #21): the same change pushed by git over SSH to a bare
// repository on a lab server and by jepush to that server's agent, from
// the test host, each timed from start to exit. The bytes of the same
// pushes are measured by `make bench` (BENCH_ONLY=delta, sshd on
// loopback); this is their time across the veth, with the server's own
// sshd and agent. It runs once whatever b.N is.
//
//	make build deb && JECLOUD_E2E=1 go test -tags e2e -run '^$' -bench DeltaPushLab -benchtime 1x ./e2e/
func BenchmarkDeltaPushLab(b *testing.B) {
	if _, err := exec.LookPath("git"); err != nil {
		b.Skip("git is not installed")
	}
	lab.Require(b)
	jeagent, jepush := binaries(b)
	srv := lab.Boot(b, 1)[0]
	if err := srv.CopyIn(jeagent, "/usr/local/bin/jeagent"); err != nil {
		b.Fatal(err)
	}
	srv.MustExec("jeagent", "init")
	push := jepushTo(b, jepush, srv)
	// git uses the same client key and known host as jepush.
	sshHome := lab.SSHHome(b, srv)
	gitEnv := append(os.Environ(), "HOME="+sshHome, "SSH_AUTH_SOCK=",
		// ssh finds ~ from the password file, not $HOME: every path given.
		"GIT_SSH_COMMAND=ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"+
			" -i "+filepath.Join(sshHome, ".ssh", "id_ed25519")+" -o UserKnownHostsFile="+filepath.Join(sshHome, ".ssh", "known_hosts"),
		"GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@localhost", "GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@localhost")
	git := func(dir string, args ...string) time.Duration {
		b.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = gitEnv
		t0 := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return time.Since(t0)
	}
	var lastOut string
	jep := func(dir string) time.Duration {
		b.Helper()
		t0 := time.Now()
		code, out := push(dir, "prod")
		if code != 0 {
			b.Fatalf("jepush %s: exit %d\n%s", dir, code, out)
		}
		lastOut = out
		return time.Since(t0)
	}
	goroot := runtime.GOROOT()
	remote := "root@" + srv.Addr.String()
	// app copies src as app name, commits it, and pushes it once by both.
	app := func(name, src string) string {
		dir := filepath.Join(b.TempDir(), name)
		if out, err := exec.Command("cp", "-a", src, dir).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v\n%s", err, out)
		}
		os.WriteFile(filepath.Join(dir, "jecloud.toml"), []byte("app = \""+name+"\"\n"), 0o644)
		for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-q", "-m", "v1"}} {
			git(dir, args...)
		}
		srv.MustExec("git", "init", "-q", "--bare", "/srv/"+name+".git")
		git(dir, "push", "-q", remote+":/srv/"+name+".git", "main")
		jep(dir)
		return dir
	}
	// change commits what was changed in dir and pushes it by git, then by
	// jepush, and reports both times.
	change := func(name, dir, metric string) {
		git(dir, "add", "-A")
		git(dir, "commit", "-q", "-m", metric)
		g := git(dir, "push", "-q", remote+":/srv/"+name+".git", "main")
		j := jep(dir)
		b.ReportMetric(float64(g.Milliseconds()), metric+"-git-ms")
		b.ReportMetric(float64(j.Milliseconds()), metric+"-jepush-ms")
		b.Logf("%s: git push %d ms, jepush %d ms:\n%s", metric, g.Milliseconds(), j.Milliseconds(), lastOut)
	}
	oneline := func(path string) {
		s, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		const line = "// ServeMux is an HTTP request multiplexer."
		if !strings.Contains(string(s), line) {
			b.Fatalf("%s: no line %q", path, line)
		}
		os.WriteFile(path, []byte(strings.Replace(string(s), line, line[:len(line)-1]+" (changed by the benchmark).", 1)), 0o644)
	}
	b.ResetTimer()
	net := app("net", filepath.Join(goroot, "src", "net"))
	oneline(filepath.Join(net, "http", "server.go"))
	change("net", net, "a-oneline-net")
	gosrc := app("gosrc", filepath.Join(goroot, "src"))
	oneline(filepath.Join(gosrc, "net", "http", "server.go"))
	change("gosrc", gosrc, "b-oneline-gosrc")
	analysis := filepath.Join(gosrc, "cmd", "vendor", "golang.org", "x", "tools", "go", "analysis")
	if err := os.Rename(analysis, analysis+"2"); err != nil {
		b.Fatal(err)
	}
	change("gosrc", gosrc, "c-renamed-dir")
}
