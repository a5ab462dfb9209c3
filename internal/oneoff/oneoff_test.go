package oneoff

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/appspec"
)

func testProcess() Process {
	return Process{Root: "/var/cloud", App: "shop", Env: "prod", AppDir: "/var/cloud/shop/prod",
		ReleaseDir: "/var/cloud/shop/prod/source/versions/0123456789ab", User: "jc-shop_prod",
		VarsFile: "/var/cloud/shop/prod/source/versions/0123456789ab.vars.env",
		Runtime:  Runtime{Path: []string{"/rt/bin"}, ReadOnly: []string{"/rt"}, Env: map[string]string{"NODE_ENV": "production"}},
		Limits:   (&appspec.Spec{}).LimitsOf("release"), Vars: map[string]string{"PORT": "5000"}}
}

func TestSystemdRun(t *testing.T) {
	p := testProcess()
	// Hostile arguments: each reaches the process as it is (no shell reads
	// them; systemd's $ expansion is undone by doubling).
	argv := []string{"sh", "-c", `echo "$HOME" $$ $(id) '%n' ; rm -rf /`, "--property=User=root", "$PATH"}
	args, err := p.SystemdRun(Unit("shop", "prod", "run-42"), PTY, argv, "RuntimeMaxSec=60")
	if err != nil {
		t.Fatal(err)
	}
	sep := slices.Index(args, "--")
	if sep < 0 {
		t.Fatalf("no -- in %q", args)
	}
	opts, cmd := args[:sep], args[sep+1:]
	want := []string{"/bin/sh", "-c", `exec "$$@"`, "jecloud-run", "sh", "-c", `echo "$$HOME" $$$$ $$(id) '%n' ; rm -rf /`, "--property=User=root", "$$PATH"}
	if !slices.Equal(cmd, want) {
		t.Errorf("command\n%q\nwant\n%q", cmd, want)
	}
	for _, w := range []string{"systemd-run", "--quiet", "--wait", "--collect", "--pty", "--unit=jecloud-shop_prod_run-42.service",
		"--property=User=jc-shop_prod", "--property=WorkingDirectory=/var/cloud/shop/prod/source/versions/0123456789ab",
		"--property=NoNewPrivileges=yes", "--property=ProtectSystem=strict", "--property=TemporaryFileSystem=/var/cloud:ro",
		"--property=BindReadOnlyPaths=/var/cloud/shop/prod/source/versions/0123456789ab /rt",
		"--property=EnvironmentFile=-/var/cloud/shop/prod/config.env", "--property=EnvironmentFile=-/var/cloud/shop/prod/source/versions/0123456789ab.vars.env", "--property=MemoryMax=50%", "--property=TasksMax=512",
		"--setenv=PATH=/rt/bin:/usr/local/bin:/usr/bin:/bin", "--setenv=NODE_ENV=production", "--setenv=PORT=5000",
		"--setenv=JECLOUD_VERSION=0123456789ab", "--setenv=HOME=/var/cloud/shop/prod/home",
		"--property=SyslogIdentifier=jecloud-shop_prod_run-42", "--property=RuntimeMaxSec=60"} {
		if !slices.Contains(opts, w) {
			t.Errorf("systemd-run options lack %q:\n%s", w, strings.Join(opts, "\n"))
		}
	}
	if slices.Contains(opts, "--pipe") {
		t.Error("--pipe with PTY")
	}
	if args, _ := p.SystemdRun("x.service", Pipe, []string{"true"}); !slices.Contains(args, "--pipe") {
		t.Errorf("Pipe mode: %q", args)
	}
	if _, err := p.SystemdRun("x.service", Pipe, nil); err == nil {
		t.Error("an empty command was accepted")
	}
	p.Vars["BAD"] = "a\nb"
	if _, err := p.SystemdRun("x.service", Pipe, []string{"true"}); err == nil {
		t.Error("a newline in a variable was accepted")
	}
}

// TestDollarsThroughShell: what systemd does to the command line ($$ to $)
// and then /bin/sh -c 'exec "$@"' give the command its arguments exactly.
func TestDollarsThroughShell(t *testing.T) {
	argv := []string{"printf", "%s|", `$HOME`, `a b`, `"q"`, `'s'`, "$(id)", "`id`", "\\n", "*"}
	args, _ := testProcess().SystemdRun("x.service", Pipe, argv)
	cmd := args[slices.Index(args, "--")+1:]
	for i := range cmd {
		cmd[i] = strings.ReplaceAll(cmd[i], "$$", "$") // what systemd does
	}
	out, err := exec.Command(cmd[0], cmd[1:]...).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(argv[2:], "|") + "|"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestReleaseError(t *testing.T) {
	e := &ReleaseError{Command: "./migrate", Status: 7, Tail: []string{"a", "b"}}
	if got := e.Error(); got != "the release command \"./migrate\" failed with exit status 7; its last lines:\na\nb" {
		t.Errorf("%q", got)
	}
	e = &ReleaseError{Command: "sleep 99", Status: 1, TimedOut: 2 * time.Minute}
	if got := e.Error(); !strings.Contains(got, "ran longer than its limit of 2m0s") || !strings.Contains(got, "[grace] release") || !strings.Contains(got, "printed nothing") {
		t.Errorf("%q", got)
	}
}

func TestTail(t *testing.T) {
	var b strings.Builder
	tw := &tailWriter{n: 3, out: &b}
	for _, l := range []string{"1", "2", "3", "4", strings.Repeat("x", 400)} {
		tw.line(l)
	}
	got := tw.lines()
	if len(got) != 3 || got[0] != "3" || got[1] != "4" || len(got[2]) != 303 {
		t.Errorf("tail %q", got)
	}
	if strings.Count(b.String(), "\n") != 5 {
		t.Errorf("not every line passed on: %q", b.String())
	}
}
