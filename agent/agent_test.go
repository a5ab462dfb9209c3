package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/bundle"
	"github.com/jecloud/jecloud/internal/rollforward"
	"github.com/jecloud/jecloud/internal/state"
)

// These tests run the real jeagent binary against a state tree in a temp dir.

var jeagent string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jeagent-test")
	if err != nil {
		panic(err)
	}
	jeagent = filepath.Join(dir, "jeagent")
	if out, err := exec.Command("go", "build", "-o", jeagent, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build jeagent: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
	signal         syscall.Signal
}

func run(t *testing.T, root string, env []string, stdin []byte, args ...string) result {
	t.Helper()
	return runBin(t, jeagent, append(append(callerEnv(), "JECLOUD_ROOT="+root), env...), stdin, args...)
}

// runBin runs the program bin with exactly the environment env.
func runBin(t *testing.T, bin string, env []string, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.signal = ws.Signal()
		}
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

// callerEnv is the test's environment without what sudo, doas and pkexec
// record of their caller: run as `sudo go test`, jeagent would otherwise
// act for that caller (TestSudoBoundary tests that on purpose).
func callerEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "SUDO_") && k != "DOAS_USER" && k != "PKEXEC_UID" {
			env = append(env, kv)
		}
	}
	return env
}

// makeBundle returns a bundle of files and its ID.
func makeBundle(t *testing.T, files map[string]string) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644)
	}
	var buf bytes.Buffer
	id, err := bundle.Write(dir, &buf, bundle.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return id, buf.Bytes()
}

// userHook installs an executable hook that appends "phase version" to calls.log.
func userHook(t *testing.T, root, body string) string {
	t.Helper()
	l := state.Layout{Root: root}
	os.MkdirAll(l.HooksDir(), 0o755)
	calls := filepath.Join(root, "calls.log")
	script := fmt.Sprintf("#!/bin/sh\necho \"$1 $JECLOUD_VERSION\" >> %s\n%s\n", calls, body)
	if err := os.WriteFile(filepath.Join(l.HooksDir(), "10-test"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return calls
}

func readApp(t *testing.T, root string) state.App {
	t.Helper()
	var a state.App
	if err := state.Read(filepath.Join(root, "web", "prod", "app.json"), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestReceiveHasDeployWait(t *testing.T) {
	root := t.TempDir()
	if r := run(t, root, nil, nil, "init"); r.code != 0 {
		t.Fatalf("init: %+v", r)
	}
	userHook(t, root, "")
	id, data := makeBundle(t, map[string]string{"server.js": "hello"})

	if r := run(t, root, nil, nil, "has", "web", "prod", id); r.code != 3 {
		t.Fatalf("has before upload: %+v", r)
	}
	// A corrupted upload is refused and leaves nothing.
	bad := append([]byte(nil), data...)
	bad[len(bad)/2] ^= 0xff
	if r := run(t, root, nil, bad, "receive", "web", "prod", id); r.code == 0 {
		t.Fatalf("corrupted upload accepted: %+v", r)
	}
	other, _ := makeBundle(t, map[string]string{"server.js": "other"})
	if r := run(t, root, nil, data, "receive", "web", "prod", other); r.code == 0 || !strings.Contains(r.stderr, "hashes to "+id) {
		t.Fatalf("upload under the wrong ID: %+v", r)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "web", "prod", "source", "versions"))
	if len(entries) != 0 {
		t.Fatalf("leftovers after refused uploads: %v", entries)
	}
	if r := run(t, root, nil, data, "receive", "web", "prod", id); r.code != 0 {
		t.Fatalf("receive: %+v", r)
	}
	if r := run(t, root, nil, nil, "has", "web", "prod", id); r.code != 0 {
		t.Fatalf("has after upload: %+v", r)
	}
	// Flags after the positional arguments.
	r := run(t, root, nil, nil, "deploy", "web", "prod", id, "--wait")
	if r.code != 0 || !strings.Contains(r.stdout, id+" is unpacked; no process types") || !strings.Contains(r.stdout, "deploy:preparing") {
		t.Fatalf("deploy --wait: %+v", r)
	}
	a := readApp(t, root)
	if a.CurrentVersion != id {
		t.Fatalf("app.json: %+v", a)
	}
	// Deploying the live version again does nothing, unless forced.
	r = run(t, root, nil, nil, "deploy", "web", "prod", id, "--wait")
	if r.code != 0 || !strings.Contains(r.stdout, "already live") {
		t.Fatalf("deploy of the live version: %+v", r)
	}
	if again := readApp(t, root); len(again.DeployedVersions) != len(a.DeployedVersions) {
		t.Fatalf("a deploy of the live version was recorded: %+v", again)
	}
	r = run(t, root, nil, nil, "deploy", "web", "prod", id, "--wait", "--force")
	if r.code != 0 || strings.Contains(r.stdout, "already live") || !strings.Contains(r.stdout, id+" is unpacked; no process types") {
		t.Fatalf("deploy --force of the live version: %+v", r)
	}
	// status --json is what scripts read.
	r = run(t, root, nil, nil, "status", "--json")
	var st struct {
		Apps []struct {
			App            string `json:"app"`
			Env            string `json:"env"`
			CurrentVersion string `json:"current_version"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Apps) != 1 || st.Apps[0].CurrentVersion != id {
		t.Fatalf("status --json: %v %+v\n%s", err, st, r.stdout)
	}
}

// A bundle damaged on disk after it was received (its receipt lets the
// roll-forward skip a second decompression) is refused at extraction,
// removed with its receipt, and the live version stays.
func TestBundleDamagedAfterReceipt(t *testing.T) {
	root := t.TempDir()
	run(t, root, nil, nil, "init")
	userHook(t, root, "")
	id1, data1 := makeBundle(t, map[string]string{"server.js": "one"})
	id2, data2 := makeBundle(t, map[string]string{"server.js": strings.Repeat("two ", 50000)})
	for _, b := range []struct {
		id   string
		data []byte
	}{{id1, data1}, {id2, data2}} {
		if r := run(t, root, nil, b.data, "receive", "web", "prod", b.id); r.code != 0 {
			t.Fatalf("receive: %+v", r)
		}
	}
	versions := filepath.Join(root, "web", "prod", "source", "versions")
	if _, err := os.Stat(filepath.Join(versions, id2+".received.json")); err != nil {
		t.Fatalf("no receipt: %v", err)
	}
	if r := run(t, root, nil, nil, "deploy", "web", "prod", id1, "--wait"); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	bad := append([]byte(nil), data2...)
	bad[len(bad)/2] ^= 0xff
	if err := os.WriteFile(filepath.Join(versions, id2+".tar.zst"), bad, 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, root, nil, nil, "deploy", "web", "prod", id2, "--wait")
	if r.code == 0 || !strings.Contains(r.stderr, "push it again") {
		t.Fatalf("deploy of a damaged bundle: %+v", r)
	}
	for _, name := range []string{id2 + ".tar.zst", id2 + ".received.json", id2} {
		if _, err := os.Stat(filepath.Join(versions, name)); err == nil {
			t.Errorf("%s left behind", name)
		}
	}
	if a := readApp(t, root); a.CurrentVersion != id1 {
		t.Errorf("current_version = %s, want %s", a.CurrentVersion, id1)
	}
	if r := run(t, root, nil, nil, "has", "web", "prod", id2); r.code != 3 {
		t.Errorf("has after the refusal: %+v (want 3: push again)", r)
	}
}

func TestDeployWaitReportsFailure(t *testing.T) {
	root := t.TempDir()
	run(t, root, nil, nil, "init")
	userHook(t, root, `[ "$1" = prepare ] && { echo "npm ci: missing package-lock.json" >&2; exit 1; }; exit 0`)
	id, data := makeBundle(t, map[string]string{"server.js": "hello"})
	run(t, root, nil, data, "receive", "web", "prod", id)
	r := run(t, root, nil, nil, "deploy", "--wait", "web", "prod", id)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code == 0 || !strings.Contains(lines[len(lines)-1], "deploy of "+id+" failed: prepare hook 10-test failed: npm ci: missing package-lock.json") {
		t.Fatalf("deploy --wait of a failing version: %+v", r)
	}
	if r := run(t, root, nil, nil, "status"); !strings.Contains(r.stdout, "npm ci: missing package-lock.json") {
		t.Fatalf("status does not show the failure: %s", r.stdout)
	}
}

func TestLockHeld(t *testing.T) {
	root := t.TempDir()
	run(t, root, nil, nil, "init")
	id, data := makeBundle(t, map[string]string{"a": "1"})
	run(t, root, nil, data, "receive", "web", "prod", id)
	state.UpdateApp(filepath.Join(root, "web", "prod", "app.json"), func(a *state.App) error {
		a.Request(id, state.Now(), false)
		return nil
	})
	unlock, ok, _, err := rollforward.Lock(state.Layout{Root: root})
	if err != nil || !ok {
		t.Fatal(err)
	}
	r := run(t, root, nil, nil, "rollforward")
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("rollforward under a held lock: %+v", r)
	}
	if a := readApp(t, root); a.Deployment == nil || a.Deployment.State != state.StateRequested {
		t.Fatalf("the run went ahead despite the lock: %+v", a)
	}
	unlock()
	if r := run(t, root, nil, nil, "fwd"); r.code != 0 {
		t.Fatalf("fwd: %+v", r)
	}
	if a := readApp(t, root); a.CurrentVersion != id {
		t.Fatalf("after the lock was freed: %+v", a)
	}
}

// TestKillAtEveryStep kills the agent with SIGKILL at every fault point of
// a deployment and of a cleanup, then checks that the next run converges
// with nothing lost and nothing done twice.
func TestKillAtEveryStep(t *testing.T) {
	points := []string{
		"after:verifying", "after:extracting", "extract:mid", "extract:renamed",
		"hook:install", "after:installing", "hook:prepare", "after:preparing",
		"after:switching", "switch:done", "hook:deployed", "after:starting",
	}
	big := strings.Repeat("some content that compresses, ", 20000) // > 64 KiB of bundle
	runs, converged := rounds(1, 3), 0
	defer func() {
		t.Logf("summary: kill -9 at every step: %d injection points x %d runs = %d kills, %d converged", len(points), runs, len(points)*runs, converged)
	}()
	for i := 0; i < len(points)*runs; i++ {
		point := points[i%len(points)]
		t.Run(point, func(t *testing.T) {
			root := t.TempDir()
			run(t, root, nil, nil, "init")
			calls := userHook(t, root, "")
			v1, d1 := makeBundle(t, map[string]string{"x": "1"})
			files := map[string]string{"x": "2", "big.txt": big}
			for i := 0; i < 50; i++ {
				files[fmt.Sprintf("lib/f%02d.js", i)] = fmt.Sprintf("module.exports = %d; // %s", i, big[:4000])
			}
			v2, d2 := makeBundle(t, files)
			run(t, root, nil, d1, "receive", "web", "prod", v1)
			run(t, root, nil, d2, "receive", "web", "prod", v2)
			if r := run(t, root, nil, nil, "deploy", "--wait", "web", "prod", v1); r.code != 0 {
				t.Fatalf("deploy v1: %+v", r)
			}
			os.Remove(calls)
			state.UpdateApp(filepath.Join(root, "web", "prod", "app.json"), func(a *state.App) error {
				a.Request(v2, state.Now(), false)
				return nil
			})
			r := run(t, root, []string{"JECLOUD_FAULT=" + point}, nil, "rollforward")
			if r.signal != syscall.SIGKILL {
				t.Fatalf("fault point %s was not reached: %+v", point, r)
			}
			// Whatever the crash left, state files parse and current is a complete release.
			a := readApp(t, root)
			live, _ := os.Readlink(filepath.Join(root, "web", "prod", "source", "versions", "current"))
			if got, err := os.ReadFile(filepath.Join(root, "web", "prod", "source", "versions", live, "x")); err != nil {
				t.Fatalf("current -> %s is not a complete release: %v", live, err)
			} else if string(got) != "1" && string(got) != "2" {
				t.Fatalf("current release content %q", got)
			}
			if r := run(t, root, nil, nil, "rollforward"); r.code != 0 {
				t.Fatalf("second run: %+v", r)
			}
			a = readApp(t, root)
			live, _ = os.Readlink(filepath.Join(root, "web", "prod", "source", "versions", "current"))
			if a.CurrentVersion != v2 || live != v2 || a.Deployment != nil || len(a.RecentFailedDeployments) != 0 {
				t.Fatalf("did not converge: current %s live %s %+v", a.CurrentVersion, live, a)
			}
			n := 0
			for _, d := range a.DeployedVersions {
				if d.Version == v2 {
					n++
				}
			}
			if n != 1 {
				t.Errorf("v2 recorded live %d times", n)
			}
			entries, _ := os.ReadDir(filepath.Join(root, "web", "prod", "source", "versions"))
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".") {
					t.Errorf("leftover %s", e.Name())
				}
			}
			got, _ := os.ReadFile(filepath.Join(root, "web", "prod", "source", "versions", v2, "lib", "f49.js"))
			if !strings.HasPrefix(string(got), "module.exports = 49;") {
				t.Errorf("release incomplete: f49.js = %.30q", got)
			}
			// Each phase ran at least once, in order, and deployed ran for v2.
			log, _ := os.ReadFile(calls)
			if !strings.Contains(string(log), "prepare "+v2) || !strings.HasSuffix(strings.TrimSpace(string(log)), "deployed "+v2) {
				t.Errorf("hook calls:\n%s", log)
			}
			if !t.Failed() {
				converged++
			}
		})
	}
}

func TestHelpEverywhere(t *testing.T) {
	root := t.TempDir()
	for _, cmd := range []string{"", "init", "deploy", "rollforward", "fwd", "status", "rollback", "receive", "has", "logs", "hook", "config", "config:set", "config:unset", "ps:scale"} {
		args := []string{"--help"}
		if cmd != "" {
			args = []string{cmd, "--help"}
		}
		r := run(t, root, nil, nil, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "USAGE") {
			t.Errorf("jeagent %s --help: %+v", cmd, r)
		}
	}
}

func TestBadInput(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"deploy", "Web", "prod", "841bc9a0e2f1"}, `invalid app name "Web"`},
		{[]string{"deploy", "web", "../x", "841bc9a0e2f1"}, `invalid environment name "../x"`},
		{[]string{"deploy", "web", "prod", "v1.0"}, `invalid version ID "v1.0"`},
		{[]string{"deploy", "web", "prod"}, "want 3 to 3 arguments"},
		{[]string{"deploy", "web", "prod", "841bc9a0e2f1"}, "is not on this server"},
		{[]string{"rollback", "web", "prod"}, "app.json"},
	} {
		r := run(t, root, nil, nil, tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("jeagent %v: %+v, want %q", tc.args, r, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "Web")); err == nil {
		t.Error("an invalid name touched the filesystem")
	}
}

func TestConfigVars(t *testing.T) {
	root := t.TempDir()
	run(t, root, nil, nil, "init")
	calls := userHook(t, root, "")
	id, data := makeBundle(t, map[string]string{"a": "1"})
	run(t, root, nil, data, "receive", "web", "prod", id)
	if r := run(t, root, nil, nil, "deploy", "web", "prod", id, "--wait"); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	os.Remove(calls)
	secret := "hunter2 \"quoted\" $HOME"
	r := run(t, root, nil, []byte(`{"DB_PASSWORD": `+strconvQuote(secret)+`}`), "config:set", "web", "prod", "API_KEY=abc", "--stdin", "--wait")
	if r.code != 0 || !strings.Contains(r.stdout, "restarting "+id) {
		t.Fatalf("config:set: %+v", r)
	}
	if log, _ := os.ReadFile(calls); strings.TrimSpace(string(log)) != "deployed "+id {
		t.Errorf("config:set should restart the live version only; hooks ran:\n%s", log)
	}
	path := filepath.Join(root, "web", "prod", "config.env")
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o007 != 0 {
		t.Fatalf("config.env must not be world-readable: %v %v", fi.Mode(), err)
	}
	r = run(t, root, nil, nil, "config", "web", "prod", "--json")
	var got map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got["DB_PASSWORD"] != secret || got["API_KEY"] != "abc" {
		t.Fatalf("config --json: %v %q", err, r.stdout)
	}
	// Secrets appear neither in status nor in the state or the log.
	status := run(t, root, nil, nil, "status", "--json").stdout
	appJSON, _ := os.ReadFile(filepath.Join(root, "web", "prod", "app.json"))
	logFile, _ := os.ReadFile(filepath.Join(root, "sys", "logs", "rollforward.log"))
	for what, s := range map[string]string{"status": status, "app.json": string(appJSON), "log": string(logFile)} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "API_KEY") {
			t.Errorf("a config var leaked into %s", what)
		}
	}
	if r := run(t, root, nil, nil, "config:unset", "web", "prod", "API_KEY", "--no-restart"); r.code != 0 {
		t.Fatalf("config:unset: %+v", r)
	}
	if r := run(t, root, nil, nil, "config", "web", "prod"); strings.Contains(r.stdout, "API_KEY") || !strings.Contains(r.stdout, "DB_PASSWORD=") {
		t.Errorf("after unset: %q", r.stdout)
	}
	for _, bad := range []string{"PORT=1", "1X=2", "novalue"} {
		if r := run(t, root, nil, nil, "config:set", "web", "prod", bad); r.code == 0 {
			t.Errorf("config:set %s accepted", bad)
		}
	}
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

func TestScale(t *testing.T) {
	root := t.TempDir()
	run(t, root, nil, nil, "init")
	// The hook saves the request it gets, to see the scale in it.
	l := state.Layout{Root: root}
	os.MkdirAll(l.HooksDir(), 0o755)
	req := filepath.Join(root, "request.json")
	os.WriteFile(filepath.Join(l.HooksDir(), "10-save"), []byte("#!/bin/sh\ncat > "+req+"\n"), 0o755)
	id, data := makeBundle(t, map[string]string{"Procfile": "web: node s.js\nworker: node w.js\n"})
	run(t, root, nil, data, "receive", "web", "prod", id)
	run(t, root, nil, nil, "deploy", "web", "prod", id, "--wait")
	if r := run(t, root, nil, nil, "ps:scale", "web", "prod", "worker=3", "web=2", "--wait"); r.code != 0 {
		t.Fatalf("ps:scale: %+v", r)
	}
	if a := readApp(t, root); a.Scale["worker"] != 3 || a.Scale["web"] != 2 {
		t.Fatalf("app.json scale: %v", a.Scale)
	}
	b, _ := os.ReadFile(req)
	if !strings.Contains(string(b), `"scale":{"web":2,"worker":3}`) || !strings.Contains(string(b), `"phase":"deployed"`) {
		t.Errorf("the deployed hook did not get the scale: %s", b)
	}
	for _, bad := range []string{"worker=-1", "worker=65", "worker", "=2"} {
		if r := run(t, root, nil, nil, "ps:scale", "web", "prod", bad); r.code == 0 {
			t.Errorf("ps:scale %s accepted", bad)
		}
	}
}

// TestPlace: deploy --role/--roles and place record the server's placement
// in app.json and hand it to the hooks; a changed placement restarts the
// live version, an unchanged one does nothing.
func TestPlace(t *testing.T) {
	root := t.TempDir()
	run(t, root, nil, nil, "init")
	l := state.Layout{Root: root}
	os.MkdirAll(l.HooksDir(), 0o755)
	req := filepath.Join(root, "request.json")
	os.WriteFile(filepath.Join(l.HooksDir(), "10-save"), []byte("#!/bin/sh\ncat >> "+req+"\necho >> "+req+"\n"), 0o755)
	id, data := makeBundle(t, map[string]string{"Procfile": "web: node s.js\nworker: node w.js\n"})
	run(t, root, nil, data, "receive", "web", "prod", id)
	if r := run(t, root, nil, nil, "deploy", "web", "prod", id, "--wait", "--role", "worker", "--roles", "web"); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	if p := readApp(t, root).Placement; p == nil || p.Role != "worker" || strings.Join(p.Roles, ",") != "web,worker" {
		t.Fatalf("placement %+v", p)
	}
	b, _ := os.ReadFile(req)
	if !strings.Contains(string(b), `"placement":{"role":"worker","roles":["web","worker"]}`) {
		t.Errorf("the hooks did not get the placement: %s", b)
	}
	deployed := func() int { b, _ := os.ReadFile(req); return strings.Count(string(b), `"phase":"deployed"`) }
	n := deployed()
	// The same version and placement: nothing to do.
	if r := run(t, root, nil, nil, "deploy", "web", "prod", id, "--wait", "--role", "worker", "--roles", "web,worker"); r.code != 0 || !strings.Contains(r.stdout, "nothing to do") {
		t.Errorf("deploy again: %+v", r)
	}
	// The same version, another placement: a restart.
	if r := run(t, root, nil, nil, "deploy", "web", "prod", id, "--wait", "--role", "web", "--roles", "web,worker"); r.code != 0 || deployed() != n+1 {
		t.Errorf("deploy with a new role: %+v, deployed hooks %d -> %d", r, n, deployed())
	}
	if r := run(t, root, nil, nil, "place", "web", "prod", "--role", "web", "--roles", "worker,web", "--wait"); r.code != 0 || !strings.Contains(r.stdout, "nothing to do") {
		t.Errorf("place, unchanged: %+v", r)
	}
	if r := run(t, root, nil, nil, "place", "web", "prod", "--role", "web", "--wait"); r.code != 0 || deployed() != n+2 {
		t.Errorf("place, the worker servers gone: %+v, deployed hooks %d", r, deployed())
	}
	if r := run(t, root, nil, nil, "place", "web", "prod", "--role", "Web"); r.code == 0 || !strings.Contains(r.stderr, `role "Web"`) {
		t.Errorf("place with a bad role: %+v", r)
	}
}

// TestKillDuringCleanupAndRollback kills the agent half way through removing
// an old release, and half way through an automatic rollback; the next run
// finishes both.
func TestKillDuringCleanupAndRollback(t *testing.T) {
	converged := 0
	defer func() {
		t.Logf("summary: kill -9 during cleanup and rollback: 2 injection points (cleanup:renamed, rollback:switched) x 1 run, %d converged", converged)
	}()
	root := t.TempDir()
	run(t, root, nil, nil, "init")
	calls := userHook(t, root, `[ "$1" = deployed ] && [ -e "$JECLOUD_RELEASE_DIR/broken" ] && { echo "crashed at start" >&2; exit 1; }; exit 0`)
	versions := filepath.Join(root, "web", "prod", "source", "versions")
	var ids []string
	for i := 0; i < 7; i++ {
		id, data := makeBundle(t, map[string]string{"x": fmt.Sprint(i)})
		run(t, root, nil, data, "receive", "web", "prod", id)
		if r := run(t, root, nil, nil, "deploy", "web", "prod", id, "--wait"); r.code != 0 {
			t.Fatalf("deploy %d: %+v", i, r)
		}
		ids = append(ids, id)
	}
	// Age the releases: cleanup may now remove the two oldest (5 are kept).
	for i, id := range ids {
		old := time.Now().Add(-10*24*time.Hour + time.Duration(i)*time.Minute)
		os.Chtimes(filepath.Join(versions, id), old, old)
		os.Chtimes(filepath.Join(versions, id+".tar.zst"), old, old)
	}
	r := run(t, root, []string{"JECLOUD_FAULT=cleanup:renamed"}, nil, "rollforward")
	if r.signal != syscall.SIGKILL {
		t.Fatalf("cleanup fault not reached: %+v", r)
	}
	if r := run(t, root, nil, nil, "rollforward"); r.code != 0 {
		t.Fatalf("run after the cleanup crash: %+v", r)
	}
	entries, _ := os.ReadDir(versions)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(entries) != 5*3+1 { // 5 releases, their bundles and receipts, and current
		t.Fatalf("after cleanup: %v", names)
	}
	for _, id := range ids[:2] {
		if _, err := os.Stat(filepath.Join(versions, id)); err == nil {
			t.Errorf("old release %s kept", id)
		}
	}
	if !t.Failed() {
		converged++
	}

	// A release whose start fails: killed right after switching back.
	os.Remove(calls)
	bad, data := makeBundle(t, map[string]string{"x": "bad", "broken": ""})
	run(t, root, nil, data, "receive", "web", "prod", bad)
	state.UpdateApp(filepath.Join(root, "web", "prod", "app.json"), func(a *state.App) error {
		a.Request(bad, state.Now(), false)
		return nil
	})
	if r := run(t, root, []string{"JECLOUD_FAULT=rollback:switched"}, nil, "rollforward"); r.signal != syscall.SIGKILL {
		t.Fatalf("rollback fault not reached: %+v", r)
	}
	if r := run(t, root, nil, nil, "rollforward"); r.code != 0 {
		t.Fatalf("run after the rollback crash: %+v", r)
	}
	a := readApp(t, root)
	live, _ := os.Readlink(filepath.Join(versions, "current"))
	last := ids[len(ids)-1]
	if a.CurrentVersion != last || live != last || a.Deployment != nil || len(a.RecentFailedDeployments) != 1 ||
		!strings.Contains(a.RecentFailedDeployments[0].Reason, "crashed at start; rolled back to "+last) {
		t.Fatalf("after the rollback: current %s live %s %+v", a.CurrentVersion, live, a.RecentFailedDeployments)
	}
	if log, _ := os.ReadFile(calls); !strings.HasSuffix(strings.TrimSpace(string(log)), "deployed "+last) {
		t.Errorf("the previous version was not restarted last:\n%s", log)
	}
	if !t.Failed() {
		converged++
	}
}
