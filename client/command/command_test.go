package command

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/remote/sshdtest"
)

var fakeAgent, _ = filepath.Abs("../../internal/push/testdata/fakeagent.sh")

// jepush runs the CLI and returns its exit code, stdout and stderr.
func jepush(ctx context.Context, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Run(ctx, append([]string{"jepush"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func app(t *testing.T) string {
	dir := t.TempDir()
	sshdtest.WriteFile(t, filepath.Join(dir, "package.json"), `{"name":"shop"}`, 0o644)
	sshdtest.WriteFile(t, filepath.Join(dir, "index.js"), "1\n", 0o644)
	return dir
}

func TestHelp(t *testing.T) {
	ctx := context.Background()
	cases := [][]string{{"--help"}, {"help", "status"}, {"./app", "prod", "--help"}}
	for _, c := range newApp(io.Discard, io.Discard).Commands {
		cases = append(cases, []string{c.Name, "--help"})
	}
	for _, args := range cases {
		code, out, errb := jepush(ctx, args...)
		if code != 0 || !strings.Contains(out, "USAGE") {
			t.Errorf("jepush %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errb)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	ctx := context.Background()
	dir := app(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{dir}, "push expects DIR ENV, got 1"},
		{[]string{dir, "prod", "extra"}, "push expects DIR ENV, got 3"},
		{[]string{dir, "Prod", "--host", "web1"}, `invalid environment name "Prod"`},
		{[]string{dir, "prod"}, "no jecloud.toml in " + dir + " and no --host"},
		{[]string{dir, "prod", "--bogus"}, "flag provided but not defined: -bogus (see: jepush push --help)"},
		{[]string{dir, "prod", "--host", "a;b"}, "invalid SSH destination"},
		{[]string{dir, "prod", "--host", "a", "--local"}, "choose one"},
		{[]string{"/nonexistent", "prod", "--local"}, "app directory"},
		{[]string{"rollback", "prod", "HEAD", "--dir", dir, "--local"}, `invalid version ID "HEAD"`},
		{[]string{"status", "prod", "--json", "--follow"}, "do not go together"},
		{[]string{"logs"}, "logs expects ENV, got 0"},
		{[]string{"servers", "prod", "--dir", dir}, "no jecloud.toml"},
		{[]string{"scale", "prod", "0", "--dir", dir}, `N "0": give a number of web servers from 1 to 100`},
		{[]string{"scale", "prod", "--role", "worker", "101", "--dir", dir}, `N "101": give a number of worker servers from 0 to 100`},
		{[]string{"scale", "prod", "--role", "Jobs", "1", "--dir", dir}, `--role: role "Jobs": use 1 to 30 of a-z`},
		{[]string{"destroy"}, "destroy expects ENV, got 0"},
	} {
		code, _, errb := jepush(ctx, tc.args...)
		if code != ExitUsage || !strings.Contains(errb, tc.want) {
			t.Errorf("jepush %s: exit %d, stderr:\n%s\nwant exit 2 and %q", strings.Join(tc.args, " "), code, errb, tc.want)
		}
	}
}

func TestBundle(t *testing.T) {
	ctx := context.Background()
	dir := app(t)
	code, out, errb := jepush(ctx, "bundle", dir)
	id := strings.TrimSpace(out)
	if code != 0 || !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(id) {
		t.Fatalf("bundle: exit %d, stdout %q, stderr %q", code, out, errb)
	}
	file := filepath.Join(t.TempDir(), "b.tar.zst")
	code, out, _ = jepush(ctx, "bundle", "-o", file, dir)
	if st, err := os.Stat(file); code != 0 || strings.TrimSpace(out) != id || err != nil || st.Size() == 0 {
		t.Errorf("bundle -o: exit %d, %q, %v", code, out, err)
	}
	code, out, _ = jepush(ctx, "bundle", dir, "--list")
	if code != 0 || out != "index.js\npackage.json\n" {
		t.Errorf("bundle --list: exit %d, %q", code, out)
	}
	if code, _, errb := jepush(ctx, "bundle", "/nonexistent"); code != ExitFailed || errb == "" {
		t.Errorf("bundle of a missing directory: exit %d %q", code, errb)
	}
}

func TestLocalPush(t *testing.T) {
	ctx := context.Background()
	dir, root := app(t), t.TempDir()
	// Flags after the arguments, and the default command.
	code, out, errb := jepush(ctx, dir, "dev", "--local", "--root", root, "--agent", fakeAgent)
	if code != 0 || !strings.Contains(out, "local: extracting") || !strings.Contains(errb, "app shop (from "+dir+`/package.json's "name"), environment dev, on local`) {
		t.Fatalf("push: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errb)
	}
	sshdtest.WriteFile(t, filepath.Join(root, "fail"), "port 3000 already in use", 0o644)
	sshdtest.WriteFile(t, filepath.Join(dir, "index.js"), "2\n", 0o644)
	code, _, errb = jepush(ctx, "push", "--local", "--root", root, "--agent", fakeAgent, dir, "dev")
	if code != ExitFailed || !strings.Contains(errb, "jepush: error: local: deploy of ") || !strings.Contains(errb, "failed: port 3000 already in use") {
		t.Errorf("failed deploy: exit %d\n%s", code, errb)
	}
	if calls, _ := os.ReadFile(filepath.Join(root, "calls.log")); !strings.Contains(string(calls), "--by "+pusher()) {
		t.Errorf("deploy without --by %s (who pushes):\n%s", pusher(), calls)
	}
	code, out, _ = jepush(ctx, "status", "dev", "--json", "--dir", dir, "--local", "--root", root, "--agent", fakeAgent)
	if code != 0 || !strings.Contains(out, `"host": "local"`) || !strings.Contains(out, `"current_version"`) {
		t.Errorf("status --json: exit %d\n%s", code, out)
	}
}

func TestPushOverSSHWithConfigFile(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	home := s.Home(t, s.KnownHostsLines())
	sshConfig := filepath.Join(t.TempDir(), "ssh_config")
	sshdtest.WriteFile(t, sshConfig, fmt.Sprintf("Host web1\n  HostName 127.0.0.1\n  Port %d\n  User %s\n", s.Port, s.User), 0o600)
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	t.Setenv("JEPUSH_SSH_CONFIG", sshConfig)
	root := t.TempDir()
	dir := app(t)
	sshdtest.WriteFile(t, filepath.Join(dir, "jecloud.toml"), fmt.Sprintf(`
app = "shop"
[env.prod]
hosts = ["web1"]
agent = %q
root = %q
`, fakeAgent, root), 0o644)
	ctx := context.Background()
	code, out, errb := jepush(ctx, dir, "prod")
	if code != 0 || !strings.Contains(out, "web1: extracting") || !strings.Contains(errb, "uploading to web1") {
		t.Fatalf("push: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errb)
	}
	code, _, errb = jepush(ctx, dir, "prod")
	if code != 0 || !strings.Contains(errb, "web1 already has version") {
		t.Errorf("re-push: exit %d\n%s", code, errb)
	}
	code, out, _ = jepush(ctx, "status", "prod", "--dir", dir)
	if code != 0 || !strings.Contains(out, "web1  live") {
		t.Errorf("status: exit %d\n%s", code, out)
	}

	// Ctrl-C while watching: exit 130 and how to follow.
	sshdtest.WriteFile(t, filepath.Join(root, "slow"), "2", 0o644)
	sshdtest.WriteFile(t, filepath.Join(dir, "index.js"), "3\n", 0o644)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var sout, serr syncBuffer
	go func() {
		for !strings.Contains(sout.String(), "web1: extracting") {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	code = Run(cctx, []string{"jepush", dir, "prod"}, &sout, &serr)
	errb = serr.String()
	if code != ExitInterrupted || !strings.Contains(errb, "goes on there") || !strings.Contains(errb, "jepush status prod --dir "+dir+" --follow") {
		t.Errorf("interrupted: exit %d\n%s", code, errb)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestEC2CommandsNeedEC2: servers, scale and destroy name the fix when the
// environment is not on EC2.
func TestEC2CommandsNeedEC2(t *testing.T) {
	dir := app(t)
	sshdtest.WriteFile(t, filepath.Join(dir, "jecloud.toml"), "[env.prod]\nhosts = [\"web1\"]\n", 0o644)
	for _, args := range [][]string{{"servers", "prod"}, {"scale", "prod", "2"}, {"destroy", "prod", "--yes"}} {
		code, _, errb := jepush(context.Background(), append(args, "--dir", dir)...)
		if code != ExitUsage || !strings.Contains(errb, `is not on EC2: set target = "ec2" in [env.prod]`) {
			t.Errorf("jepush %v: exit %d, %s", args, code, errb)
		}
	}
}

// TestCheck: jepush check and every push read jecloud.toml, the Procfile
// and package.json as the agent will, before anything is sent (#20).
func TestCheck(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		files map[string]string
		code  int
		want  string
	}{
		{"good", map[string]string{"Procfile": "web: python3 -m http.server $PORT\nworker: ./work\n",
			"jecloud.toml": "app = \"shop\"\n[env.prod]\nhosts = [\"web1\"]\n[scale]\nworker = 2\n"}, 0,
			"jecloud.toml: ok (app shop; environments: prod)\nprocess types: web, worker×2\n"},
		{"misspelt key", map[string]string{"Procfile": "web: a\n", "jecloud.toml": "app = \"shop\"\n\n[web]\nhelth = \"/healthz\"\n"}, 2,
			`jecloud.toml:4: unknown key "helth" in [web]: did you mean "health"?`},
		{"type error in scale", map[string]string{"Procfile": "web: a\n", "jecloud.toml": "[scale]\nweb = \"2\"\n"}, 2,
			`jecloud.toml:2: scale.web is a string: give a whole number of instances`},
		{"Procfile syntax", map[string]string{"Procfile": "web python3 app.py\n"}, 2,
			`Procfile:1: "web python3 app.py" is not "type: command"`},
		{"engines.node", map[string]string{"package.json": `{"name": "shop", "engines": {"node": ">=22 <20"}}`}, 2,
			`engines.node ">=22 <20": no version satisfies it`},
		{"engines.node syntax", map[string]string{"package.json": `{"name": "shop", "engines": {"node": "20.x"}}`}, 0,
			`engines.node "20.x": a valid version or range (whether a Node.js release satisfies it is checked by the server)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				sshdtest.WriteFile(t, filepath.Join(dir, name), content, 0o644)
			}
			code, out, errb := jepush(ctx, "check", dir)
			if code != tc.code || !strings.Contains(out+errb, tc.want) {
				t.Fatalf("jepush check: exit %d, want %d and %q\n%s%s", code, tc.code, tc.want, out, errb)
			}
			if tc.code == 0 {
				return
			}
			// A push stops at the same problem, before it connects anywhere
			// (web1 does not exist: connecting would be another error).
			code, _, errb = jepush(ctx, dir, "prod", "--host", "web1")
			if code != ExitUsage || !strings.Contains(errb, tc.want) || !strings.Contains(errb, "nothing was sent") {
				t.Errorf("push: exit %d, want the check's error\n%s", code, errb)
			}
		})
	}
}

// TestConventions: did you mean, a flag without its value, --version, and
// the help of --timeout (#20).
func TestConventions(t *testing.T) {
	ctx := context.Background()
	dir := app(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"stauts", "prod"}, ExitUsage, `"stauts" is neither a command nor a directory: did you mean "status"?`},
		{[]string{"rollbakc", "prod"}, ExitUsage, `did you mean "rollback"?`},
		{[]string{dir, "prod", "--timeout"}, ExitUsage, "--timeout needs a value: --timeout VALUE (see: jepush push --help)"},
		{[]string{"status", "prod", "--dir"}, ExitUsage, "--dir needs a value"},
		{[]string{dir, "prod", "--host"}, ExitUsage, "--host needs a value"},
	} {
		code, out, errb := jepush(ctx, tc.args...)
		if code != tc.code || !strings.Contains(errb, tc.want) {
			t.Errorf("jepush %q: exit %d, want %d and %q\n%s%s", tc.args, code, tc.code, tc.want, out, errb)
		}
	}
	// Completion: the script, and a shell asking runs nothing (no push here).
	code, out, errb := jepush(ctx, "completion", "bash")
	if code != 0 || !strings.Contains(out, "complete -o bashdefault -o default -F _jepush_complete jepush") {
		t.Errorf("completion bash: exit %d\n%s%s", code, out, errb)
	}
	// (cli reads os.Args for the word before the one being completed.)
	saved := os.Args
	os.Args = []string{"jepush", "--generate-bash-completion"}
	code, out, errb = jepush(ctx, "--generate-bash-completion")
	os.Args = saved
	if code != 0 || !strings.Contains(out, "status\n") || !strings.Contains(out, "check\n") {
		t.Errorf("completing a command: exit %d\n%s%s", code, out, errb)
	}
	code, _, errb = jepush(ctx, dir, "prod", "--generate-bash-completion")
	if code != 0 || errb != "" {
		t.Errorf("completing after DIR ENV ran something: exit %d\n%s", code, errb)
	}
	code, out, _ = jepush(ctx, "--version")
	if code != 0 || !strings.HasPrefix(out, "jepush ") || !strings.Contains(out, "protocol 1") {
		t.Errorf("--version: exit %d %q", code, out)
	}
	_, out, _ = jepush(ctx, "push", "--help")
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "--timeout") {
			line = l
		}
	}
	if strings.Count(line, "(default") != 1 || !strings.Contains(line, "30m") {
		t.Errorf("push --help, --timeout: %q; want one default, the agent's 30m", line)
	}
}
