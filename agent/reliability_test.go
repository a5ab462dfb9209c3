package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/state"
)

// Fault, concurrency and disk tests of the real jeagent binary. Figures
// are in docs/reliability.md; `make reliability` runs them all (with
// JECLOUD_RELIABILITY=full: more rounds).

func full() bool { return os.Getenv("JECLOUD_RELIABILITY") == "full" }

// rounds is n, or fullN with JECLOUD_RELIABILITY=full.
func rounds(n, fullN int) int {
	if full() {
		return fullN
	}
	return n
}

var web = filepath.Join("web", "prod")

func versionsDir(root string) string { return filepath.Join(root, web, "source", "versions") }

// names lists a directory, sorted.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// assertLive checks that app.json parses and says id is live, that current
// points at the complete release id (its file x holds content), and that
// nothing is pending or left over.
func assertLive(t *testing.T, root, id, content string) state.App {
	t.Helper()
	a := readApp(t, root)
	live, _ := os.Readlink(filepath.Join(versionsDir(root), "current"))
	if a.CurrentVersion != id || live != id || a.Deployment != nil {
		t.Fatalf("want %s live: current_version %q, current -> %q, deployment %+v", id, a.CurrentVersion, live, a.Deployment)
	}
	if got, err := os.ReadFile(filepath.Join(versionsDir(root), "current", "x")); err != nil || string(got) != content {
		t.Fatalf("current release x = %q, %v; want %q", got, err, content)
	}
	for _, n := range names(t, versionsDir(root)) {
		if strings.HasPrefix(n, ".") {
			t.Errorf("leftover %s in versions/", n)
		}
	}
	return a
}

// setup makes a root with v1 live and v2 uploaded, then installs a user
// hook whose body may use V1, V2 and FIXED (a file the test creates to
// mend the hook).
func setup(t *testing.T, body string) (root, v1, v2, fixed string) {
	t.Helper()
	root = t.TempDir()
	if r := run(t, root, nil, nil, "init"); r.code != 0 {
		t.Fatalf("init: %+v", r)
	}
	v1, d1 := makeBundle(t, map[string]string{"x": "1"})
	v2, d2 := makeBundle(t, map[string]string{"x": "2"})
	for _, b := range []struct {
		id   string
		data []byte
	}{{v1, d1}, {v2, d2}} {
		if r := run(t, root, nil, b.data, "receive", "web", "prod", b.id); r.code != 0 {
			t.Fatalf("receive: %+v", r)
		}
	}
	fixed = filepath.Join(root, "fixed")
	userHook(t, root, strings.NewReplacer("V1", v1, "V2", v2, "FIXED", fixed).Replace(body))
	if r := run(t, root, nil, nil, "deploy", "web", "prod", v1, "--wait"); r.code != 0 {
		t.Fatalf("deploy v1: %+v", r)
	}
	return root, v1, v2, fixed
}

func request(t *testing.T, root, id string) {
	t.Helper()
	if _, err := state.UpdateApp(filepath.Join(root, web, "app.json"), func(a *state.App) error {
		a.Request(id, state.Now(), false)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestKilledHook: a user hook killed with SIGKILL (by itself, as the OOM
// killer would) fails the deployment with a clear reason and v1 stays live;
// a hook that SIGKILLs the agent leaves a run that the next one finishes.
// Once the hook is mended, the next roll-forward converges.
func TestKilledHook(t *testing.T) {
	only := func(phase string) string {
		return `[ "$1" = ` + phase + ` ] && [ "$JECLOUD_VERSION" = V2 ] && [ ! -e FIXED ]`
	}
	cases := []struct {
		name        string
		body        string
		reason      string // the failure recorded (V1 replaced); "" when the agent dies
		agentKilled bool
	}{
		{name: "install hook killed", body: only("install") + ` && kill -9 $$; exit 0`, reason: "install hook 10-test failed: signal: killed"},
		{name: "prepare hook killed", body: only("prepare") + ` && kill -9 $$; exit 0`, reason: "prepare hook 10-test failed: signal: killed"},
		{name: "prepare hook killed after output", body: only("prepare") + ` && { echo "npm ci: building" >&2; kill -9 $$; }; exit 0`,
			reason: "prepare hook 10-test failed: npm ci: building (signal: killed)"},
		{name: "deployed hook killed", body: only("deployed") + ` && kill -9 $$; exit 0`, reason: "deployed hook 10-test failed: signal: killed; rolled back to V1"},
		{name: "hook kills the agent in install", body: only("install") + ` && { kill -9 $PPID; sleep 5; }; exit 0`, agentKilled: true},
		{name: "hook kills the agent in prepare", body: only("prepare") + ` && { kill -9 $PPID; sleep 5; }; exit 0`, agentKilled: true},
		{name: "hook kills the agent in deployed", body: only("deployed") + ` && { kill -9 $PPID; sleep 5; }; exit 0`, agentKilled: true},
	}
	converged := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root, v1, v2, fixed := setup(t, tc.body)
			if tc.agentKilled {
				request(t, root, v2)
				if r := run(t, root, nil, nil, "rollforward"); r.signal != syscall.SIGKILL {
					t.Fatalf("the hook did not kill the agent: %+v", r)
				}
				// Whatever the crash left: app.json parses, current is a complete release.
				a := readApp(t, root)
				if a.Deployment == nil || a.Deployment.Version != v2 {
					t.Fatalf("the deployment was lost: %+v", a)
				}
				x, err := os.ReadFile(filepath.Join(versionsDir(root), "current", "x"))
				if err != nil || (string(x) != "1" && string(x) != "2") {
					t.Fatalf("current is not a complete release: %q %v", x, err)
				}
				os.WriteFile(fixed, nil, 0o644)
				if r := run(t, root, nil, nil, "rollforward"); r.code != 0 {
					t.Fatalf("the next run: %+v", r)
				}
				if a := assertLive(t, root, v2, "2"); len(a.RecentFailedDeployments) != 0 {
					t.Errorf("a crash of the agent was recorded as a failure: %+v", a.RecentFailedDeployments)
				}
				converged++
				return
			}
			r := run(t, root, nil, nil, "deploy", "web", "prod", v2, "--wait")
			want := "jeagent: deploy of " + v2 + " failed: " + strings.ReplaceAll(tc.reason, "V1", v1)
			if r.code != 1 || lastLine(r.stderr) != want {
				t.Fatalf("deploy --wait: exit %d, last line %q, want %q", r.code, lastLine(r.stderr), want)
			}
			a := assertLive(t, root, v1, "1")
			if n := len(a.RecentFailedDeployments); n != 1 || a.RecentFailedDeployments[0].Version != v2 {
				t.Fatalf("recent_failed_deployments %+v", a.RecentFailedDeployments)
			}
			if st := run(t, root, nil, nil, "status"); !strings.Contains(st.stdout, strings.TrimPrefix(want, "jeagent: deploy of "+v2+" failed: ")) {
				t.Errorf("status does not give the reason:\n%s", st.stdout)
			}
			os.WriteFile(fixed, nil, 0o644)
			if r := run(t, root, nil, nil, "deploy", "web", "prod", v2, "--wait"); r.code != 0 {
				t.Fatalf("deploy after the hook was mended: %+v", r)
			}
			assertLive(t, root, v2, "2")
			converged++
		})
	}
	t.Logf("summary: killed hooks: %d cases (hook SIGKILLed in install/prepare/deployed, hook SIGKILLs the agent in install/prepare/deployed) x 1 run: %d converged, reason recorded for each failed one",
		len(cases), converged)
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	end := strings.LastIndexByte(s, ')')
	return end < 0 || end+2 >= len(s) || s[end+2] != 'Z'
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pid
}

// TestAgentKilledWhileHookHangs: a hook hangs (a child of its own holds it)
// and the roll-forward is SIGKILLed from outside, as systemd's
// TimeoutStartSec or a reboot would. The hook itself dies with the agent
// (parent-death signal); the next run starts the phase again and converges.
// Outside systemd the hook's own children are not killed: the test reports
// whether the child outlived the agent (under systemd the unit's cgroup is
// killed with it).
func TestAgentKilledWhileHookHangs(t *testing.T) {
	root, _, v2, fixed := setup(t, `[ "$1" = prepare ] && [ "$JECLOUD_VERSION" = V2 ] && [ ! -e FIXED ] && {
  sleep 60 & echo $! > "$JECLOUD_ROOT/child"; echo $$ > "$JECLOUD_ROOT/self"; wait; }; exit 0`)
	child, self := filepath.Join(root, "child"), filepath.Join(root, "self")
	request(t, root, v2)
	cmd := exec.Command(jeagent, "rollforward")
	cmd.Env = append(os.Environ(), "JECLOUD_ROOT="+root)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the hook to hang", 10*time.Second, func() bool {
		b, _ := os.ReadFile(self) // written last, by `echo`: whole once it ends in a newline
		return strings.HasSuffix(string(b), "\n")
	})
	hookPID, childPID := readPID(t, self), readPID(t, child)
	t.Cleanup(func() {
		// Only the hook's `sleep 60`, if the test stopped before killing it.
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", childPID)); err == nil && string(b) == "sleep\x0060\x00" {
			syscall.Kill(childPID, syscall.SIGKILL)
		}
	})
	cmd.Process.Kill()
	cmd.Wait()
	waitFor(t, "the hook to die with the agent", 5*time.Second, func() bool { return !alive(hookPID) })
	if alive(childPID) {
		t.Logf("summary: known limitation: the hook's child (pid %d) outlived the SIGKILLed agent; outside systemd nothing kills it (under systemd the unit's cgroup is killed)", childPID)
		syscall.Kill(childPID, syscall.SIGKILL)
	}
	if a := readApp(t, root); a.Deployment == nil || a.Deployment.Version != v2 || a.Deployment.State != state.StatePreparing {
		t.Fatalf("after the kill: %+v", a.Deployment)
	}
	os.WriteFile(fixed, nil, 0o644)
	if r := run(t, root, nil, nil, "rollforward"); r.code != 0 {
		t.Fatalf("the next run: %+v", r)
	}
	assertLive(t, root, v2, "2")
}

// TestRacingDeploys starts two `jeagent deploy --wait` processes of two
// versions at once, for several rounds: the newest request wins and goes
// live, the other is recorded in aborted_deployment_versions (or, if it
// was quick enough, went live first), and nothing fails or stays pending.
func TestRacingDeploys(t *testing.T) {
	n := rounds(4, 20)
	root := t.TempDir()
	run(t, root, nil, nil, "init")
	// A prepare step that takes a moment, so that the two overlap.
	userHook(t, root, `[ "$1" = prepare ] && sleep 0.1; exit 0`)
	type version struct {
		id      string
		content string
	}
	var pairs [][2]version
	for i := 0; i < n; i++ {
		var pair [2]version
		for j := range pair {
			content := fmt.Sprintf("round %d deploy %d", i, j)
			id, data := makeBundle(t, map[string]string{"x": content})
			if r := run(t, root, nil, data, "receive", "web", "prod", id); r.code != 0 {
				t.Fatalf("receive: %+v", r)
			}
			pair[j] = version{id, content}
		}
		pairs = append(pairs, pair)
	}
	var superseded, sequential int
	var slowest time.Duration
	for i, pair := range pairs {
		before := readAppOrEmpty(t, root)
		start := time.Now()
		var results [2]result
		var errs [2]error
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for j := range pair {
			wg.Add(1)
			go func(j int) {
				defer wg.Done()
				cmd := exec.Command(jeagent, "deploy", "web", "prod", pair[j].id, "--wait", "--timeout", "60s")
				cmd.Env = append(os.Environ(), "JECLOUD_ROOT="+root)
				var out, errb bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errb
				<-gate
				err := cmd.Run()
				results[j] = result{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					errs[j] = err
				}
			}(j)
		}
		close(gate)
		wg.Wait()
		if err := errors.Join(errs[:]...); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > slowest {
			slowest = d
		}
		a := readApp(t, root)
		w := slices.IndexFunc(pair[:], func(v version) bool { return v.id == a.CurrentVersion })
		if w < 0 {
			t.Fatalf("round %d: current_version %s is neither racer", i, a.CurrentVersion)
		}
		winner, loser := pair[w], pair[1-w]
		assertLive(t, root, winner.id, winner.content)
		if results[w].code != 0 || !strings.Contains(results[w].stdout, winner.id+" is unpacked; no process types") {
			t.Fatalf("round %d: the winner's deploy --wait: %+v", i, results[w])
		}
		if len(a.RecentFailedDeployments) != 0 {
			t.Fatalf("round %d: failures %+v", i, a.RecentFailedDeployments)
		}
		newAborted := a.AbortedDeploymentVersions[len(before.AbortedDeploymentVersions):]
		switch {
		case slices.Equal(newAborted, []string{loser.id}):
			superseded++
			if r := results[1-w]; r.code != 1 || !strings.Contains(r.stderr, "superseded by a newer deployment") {
				t.Fatalf("round %d: the loser's deploy --wait: %+v", i, r)
			}
		case len(newAborted) == 0 && slices.ContainsFunc(a.DeployedVersions, func(d state.Deployed) bool { return d.Version == loser.id }):
			sequential++ // the first went live before the second was asked for
		default:
			t.Fatalf("round %d: loser %s neither aborted nor deployed: aborted %v", i, loser.id, a.AbortedDeploymentVersions)
		}
	}
	t.Logf("summary: racing deploys: %d rounds of 2 processes at once: %d converged to the newest (%d with the other aborted, %d one after the other), slowest round %v",
		n, superseded+sequential, superseded, sequential, slowest.Round(time.Millisecond))
}

func readAppOrEmpty(t *testing.T, root string) state.App {
	t.Helper()
	var a state.App
	if err := state.Read(filepath.Join(root, web, "app.json"), &a); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return a
}

// TestRollforwardWhileAnotherRuns: a second `jeagent rollforward` started
// while one runs exits 0 at once, naming the pid of the one that runs; so
// does status. The first then finishes the work.
func TestRollforwardWhileAnotherRuns(t *testing.T) {
	root, _, v2, fixed := setup(t, `[ "$1" = prepare ] && [ "$JECLOUD_VERSION" = V2 ] && { touch FIXED.in; while [ ! -e FIXED ]; do sleep 0.02; done; }; exit 0`)
	request(t, root, v2)
	first := exec.Command(jeagent, "rollforward")
	first.Env = append(os.Environ(), "JECLOUD_ROOT="+root)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	waitFor(t, "the first run to reach prepare", 10*time.Second, func() bool { _, err := os.Stat(fixed + ".in"); return err == nil })
	start := time.Now()
	r := run(t, root, nil, nil, "rollforward")
	took := time.Since(start)
	want := fmt.Sprintf("another roll-forward is running (pid %d", first.Process.Pid)
	if r.code != 0 || !strings.Contains(r.stdout, want) || took > 2*time.Second {
		t.Fatalf("second run (%v): %+v, want exit 0 and %q", took, r, want)
	}
	if st := run(t, root, nil, nil, "status"); !strings.Contains(st.stdout, fmt.Sprintf("a roll-forward is running (pid %d)", first.Process.Pid)) {
		t.Errorf("status during the run:\n%s", st.stdout)
	}
	os.WriteFile(fixed, nil, 0o644)
	if err := first.Wait(); err != nil {
		t.Fatalf("first run: %v", err)
	}
	assertLive(t, root, v2, "2")
	t.Logf("summary: a second roll-forward while one runs: exit 0 after %v naming pid %d; the first converged", took.Round(time.Millisecond), first.Process.Pid)
}

// TestHookCallsBackIntoAgent: a hook that runs jeagent itself (status,
// has, config, rollforward, deploy; even deploy --wait) must not deadlock
// the roll-forward that runs it. A deploy from within a hook is a newer
// request: it wins.
func TestHookCallsBackIntoAgent(t *testing.T) {
	root := t.TempDir()
	// v3's run goes on in the background after the test has seen it live;
	// the directory is removed only once it ended (under load it once
	// still wrote there: "directory not empty").
	t.Cleanup(func() { idle(t, root) })
	run(t, root, nil, nil, "init")
	var ids []string
	for _, c := range []string{"1", "2", "3"} {
		id, data := makeBundle(t, map[string]string{"x": c})
		run(t, root, nil, data, "receive", "web", "prod", id)
		ids = append(ids, id)
	}
	v1, v2, v3 := ids[0], ids[1], ids[2]
	out := filepath.Join(root, "callback")
	os.MkdirAll(out, 0o755)
	// jeagent finds its root in the hook's JECLOUD_ROOT.
	body := strings.NewReplacer("JEAGENT", jeagent, "OUT", out, "V2", v2, "V3", v3).Replace(`
if [ "$1" = deployed ] && [ "$JECLOUD_VERSION" = V2 ]; then
  JEAGENT status > OUT/status 2>&1; echo "status $?" >> OUT/codes
  JEAGENT status --json > OUT/status.json 2>&1; echo "status-json $?" >> OUT/codes
  JEAGENT has web prod V2 > OUT/has 2>&1; echo "has $?" >> OUT/codes
  JEAGENT config web prod > OUT/config 2>&1; echo "config $?" >> OUT/codes
  JEAGENT rollforward > OUT/rollforward 2>&1; echo "rollforward $?" >> OUT/codes
  start=$(date +%s)
  JEAGENT deploy web prod V2 --wait --timeout 1s > OUT/deploy-wait 2>&1; echo "deploy-wait $? $(( $(date +%s) - start ))" >> OUT/codes
  start=$(date +%s)
  JEAGENT status web prod --follow --timeout 5s > OUT/follow 2>&1; echo "follow $? $(( $(date +%s) - start ))" >> OUT/codes
  JEAGENT deploy web prod V3 > OUT/deploy 2>&1; echo "deploy $?" >> OUT/codes
fi
exit 0`)
	userHook(t, root, body)
	if r := run(t, root, nil, nil, "deploy", "web", "prod", v1, "--wait"); r.code != 0 {
		t.Fatalf("deploy v1: %+v", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, jeagent, "deploy", "web", "prod", v2, "--wait")
	cmd.Env = append(os.Environ(), "JECLOUD_ROOT="+root)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("deadlock: deploy --wait of a version whose hook calls jeagent did not end in 60 s\n%s%s", stdout.String(), stderr.String())
	}
	// v2's deployed hook asked for v3: v2 was superseded, v3 went live.
	// (of v3, or "see aborted_deployment_versions" when v3 was live before --wait looked)
	if err == nil || !strings.Contains(lastLine(stderr.String()), "superseded by a newer deployment") {
		t.Fatalf("deploy --wait of v2: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	waitFor(t, "v3 to go live", 30*time.Second, func() bool {
		var a state.App
		return state.Read(filepath.Join(root, web, "app.json"), &a) == nil && a.CurrentVersion == v3 && a.Deployment == nil
	})
	a := assertLive(t, root, v3, "3")
	if !slices.Contains(a.AbortedDeploymentVersions, v2) {
		t.Errorf("v2 is not in aborted_deployment_versions: %v", a.AbortedDeploymentVersions)
	}
	codes, _ := os.ReadFile(filepath.Join(out, "codes"))
	got := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(codes)), "\n") {
		f := strings.Fields(l)
		got[f[0]] = f[1:]
	}
	for cmd, code := range map[string]string{"status": "0", "status-json": "0", "has": "0", "config": "0", "rollforward": "0", "deploy": "0"} {
		if len(got[cmd]) == 0 || got[cmd][0] != code {
			t.Errorf("jeagent %s from within a hook: exit %v, want %s\n%s", cmd, got[cmd], code, codes)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(out, "rollforward")); !strings.Contains(string(b), "another roll-forward is running (pid") {
		t.Errorf("rollforward from within a hook: %s", b)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "status")); !strings.Contains(string(b), "deploying:  "+v2+"  step starting") {
		t.Errorf("status from within a hook:\n%s", b)
	}
	// deploy --wait from within a hook would wait for the run that waits for
	// the hook: it records the deployment and says it does not wait.
	if w := got["deploy-wait"]; len(w) != 2 || w[0] != "0" {
		t.Errorf("deploy --wait from within a hook: %v", w)
	} else if secs, _ := strconv.Atoi(w[1]); secs > 10 {
		t.Errorf("deploy --wait --timeout 1s from within a hook took %d s", secs)
	} else {
		b, _ := os.ReadFile(filepath.Join(out, "deploy-wait"))
		if !strings.Contains(string(b), "not waiting") {
			t.Errorf("deploy --wait from within a hook does not say it does not wait: %s", b)
		}
		t.Logf("summary: deploy --wait from within a hook: exit %s after %s s: %s", w[0], w[1], lastLine(string(b)))
	}
	// status --follow likewise.
	if w := got["follow"]; len(w) != 2 || w[0] != "0" {
		t.Errorf("status --follow from within a hook: %v", w)
	} else if b, _ := os.ReadFile(filepath.Join(out, "follow")); !strings.Contains(string(b), "not following") {
		t.Errorf("status --follow from within a hook does not say it does not follow: %s", b)
	} else {
		t.Logf("summary: status --follow from within a hook: exit %s after %s s: %s", w[0], w[1], lastLine(string(b)))
	}
}

// mountTmpfs mounts a tmpfs of size on a new directory (root only) and
// unmounts it when the test ends.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the disk-full cases need root to mount a small tmpfs (mount -t tmpfs -o size=" + size + "); skipped")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "jecloud-test", dir).CombinedOutput(); err != nil {
		t.Skipf("mount -t tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		for i := 0; ; i++ {
			out, err := exec.Command("umount", dir).CombinedOutput()
			if err == nil {
				return
			}
			if i == 50 { // a detached roll-forward still in there
				t.Errorf("umount %s: %v: %s", dir, err, out)
				exec.Command("umount", "-l", dir).Run()
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return dir
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return
		}
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// leaveFree fills the file system of dir with a file at path until only
// about free bytes are left.
func leaveFree(t *testing.T, dir, path string, free int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	n := int64(st.Bavail)*st.Bsize - free
	if n <= 0 {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := f.Write(buf[:k]); err != nil {
			t.Fatal(err)
		}
		n -= k
	}
}

// TestDiskFull runs the agent on a small tmpfs: the agent keeps a 64 MiB
// reserve when it receives and when it unpacks, so v1 is deployed on
// 72 MiB, which is then filled to leave 66 MiB free. An upload that would
// eat into the reserve, a release that would not fit, and a deploy request
// on a disk with no space at all each fail with a clear reason, leave no
// partial file, and v1 stays live.
func TestDiskFull(t *testing.T) {
	root := mountTmpfs(t, "72m")
	if r := run(t, root, nil, nil, "init"); r.code != 0 {
		t.Fatalf("init: %+v", r)
	}
	userHook(t, root, "")
	v1, d1 := makeBundle(t, map[string]string{"x": "1"})
	run(t, root, nil, d1, "receive", "web", "prod", v1)
	if r := run(t, root, nil, nil, "deploy", "web", "prod", v1, "--wait"); r.code != 0 {
		t.Fatalf("deploy v1: %+v", r)
	}
	baseline := names(t, versionsDir(root))
	leaveFree(t, root, filepath.Join(root, "ballast"), 66<<20)

	// An upload that would leave less than the reserve (random bytes do
	// not compress): stopped as it runs short.
	noise := make([]byte, 12<<20)
	rand.Read(noise)
	big, dbig := makeBundle(t, map[string]string{"x": string(noise)})
	r := run(t, root, nil, dbig, "receive", "web", "prod", big)
	if r.code == 0 || !strings.Contains(r.stderr, "not enough free space in "+versionsDir(root)+" for "+big) || !strings.Contains(r.stderr, "JeCloud keeps 64.0 MiB free") {
		t.Fatalf("receive of %d bytes into 66 MiB free: %+v", len(dbig), r)
	}
	if got := names(t, versionsDir(root)); !slices.Equal(got, baseline) {
		t.Errorf("after the refused upload versions/ holds %v, want %v", got, baseline)
	}
	if r := run(t, root, nil, nil, "has", "web", "prod", big); r.code != 3 {
		t.Errorf("has after the refused upload: %+v", r)
	}

	// A bundle that fits but whose release would not (8 MiB of zeros).
	wide, dwide := makeBundle(t, map[string]string{"x": strings.Repeat("\x00", 8<<20)})
	if r := run(t, root, nil, dwide, "receive", "web", "prod", wide); r.code != 0 {
		t.Fatalf("receive of a %d-byte bundle: %+v", len(dwide), r)
	}
	r = run(t, root, nil, nil, "deploy", "web", "prod", wide, "--wait")
	if r.code != 1 || !strings.HasPrefix(lastLine(r.stderr), "jeagent: deploy of "+wide+" failed: out of disk space: "+wide+" needs 8.0 MiB") {
		t.Fatalf("deploy of a release bigger than the disk: exit %d, %q", r.code, lastLine(r.stderr))
	}
	assertLive(t, root, v1, "1")
	if got, want := names(t, versionsDir(root)), append(slices.Clone(baseline), wide+".received.json", wide+".tar.zst"); !equalSorted(got, want) {
		t.Errorf("after the refused extraction versions/ holds %v, want %v", got, want)
	}

	// A disk so full that the request cannot be recorded: app.json is kept.
	appJSON := filepath.Join(root, web, "app.json")
	before, _ := os.ReadFile(appJSON)
	fill(t, filepath.Join(root, "filler"))
	r = run(t, root, nil, nil, "deploy", "web", "prod", v1, "--force")
	if want := "out of disk space: cannot write " + appJSON + " (it is left as it was): write "; r.code == 0 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "no space left on device") {
		t.Fatalf("deploy on a full disk: %+v", r)
	}
	if after, _ := os.ReadFile(appJSON); !bytes.Equal(after, before) {
		t.Fatalf("app.json changed on a full disk:\n%s", after)
	}
	if temps, _ := filepath.Glob(filepath.Join(root, web, ".app.json.tmp-*")); len(temps) != 0 {
		t.Errorf("temp files left on a full disk: %v", temps)
	}
	if st := run(t, root, nil, nil, "status"); st.code != 0 || !strings.Contains(st.stdout, "unpacked:   "+v1) {
		t.Errorf("status on a full disk: %+v", st)
	}
	os.Remove(filepath.Join(root, "filler"))
	os.Remove(filepath.Join(root, "ballast"))
	if r := run(t, root, nil, nil, "deploy", "web", "prod", v1, "--force", "--wait"); r.code != 0 {
		t.Fatalf("deploy once space is back: %+v", r)
	}
	assertLive(t, root, v1, "1")
	t.Logf("summary: disk full (tmpfs, 66 MiB free against a 64 MiB reserve, then none): 3 cases (an upload that would eat the reserve, an extraction, a request on a full disk) refused with not enough free space / out of disk space / no space left, no partial file, v1 live; deployed once space was back")
}

func equalSorted(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

// TestStateTempLeftoversCLI: leftovers of state writes cut by a power loss
// (a temp file with the first n bytes beside the intact file) in sys/ and
// in an app environment: the agent keeps the old state, removes them
// (sys/ at the next run that works; app dirs once an hour old) and deploys.
// server.json: every 4th byte (every byte with JECLOUD_RELIABILITY=full;
// every byte in process: internal/rollforward); app.json: 9 cuts.
func TestStateTempLeftoversCLI(t *testing.T) {
	root := t.TempDir()
	run(t, root, nil, nil, "init")
	userHook(t, root, "")
	v1, d1 := makeBundle(t, map[string]string{"x": "1"})
	run(t, root, nil, d1, "receive", "web", "prod", v1)
	if r := run(t, root, nil, nil, "deploy", "web", "prod", v1, "--wait"); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	serverJSON := filepath.Join(root, "sys", "server.json")
	appJSON := filepath.Join(root, web, "app.json")
	oldServer, _ := os.ReadFile(serverJSON)
	newServer, _ := state.Encode(&state.Server{Retention: state.Retention{KeepReleases: 3, MinAgeDays: 2}})
	var app state.App
	state.Read(appJSON, &app)
	oldApp, _ := os.ReadFile(appJSON)
	app.Request(v1, state.Now(), false)
	newApp, _ := state.Encode(&app)
	cases := 0
	check := func(what, path string, old, data []byte, n int, age time.Duration) {
		t.Helper()
		tmp := atomicfile.TempName(path)
		if err := os.WriteFile(tmp, data[:n], 0o640); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		os.Chtimes(tmp, at, at)
		request(t, root, v1) // a restart, so that the run has work and takes the lock
		if r := run(t, root, nil, nil, "rollforward"); r.code != 0 || r.stderr != "" && strings.Contains(r.stderr, "skipped") {
			t.Fatalf("%s cut at %d: %+v", what, n, r)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, old) && what == "server.json" {
			t.Fatalf("%s cut at %d: the file changed", what, n)
		}
		if _, err := os.Lstat(tmp); err == nil {
			t.Fatalf("%s cut at %d: leftover %s kept", what, n, filepath.Base(tmp))
		}
		if a := readApp(t, root); a.CurrentVersion != v1 || a.Deployment != nil {
			t.Fatalf("%s cut at %d: %+v", what, n, a)
		}
		cases++
	}
	step := rounds(4, 1) // every 4th byte; every byte with JECLOUD_RELIABILITY=full
	for n := 0; n <= len(newServer); n += step {
		check("server.json", serverJSON, oldServer, newServer, n, 0)
	}
	for i := 0; i <= 8; i++ {
		check("app.json", appJSON, oldApp, newApp, i*len(newApp)/8, 2*time.Hour)
	}
	if got, _ := os.ReadFile(serverJSON); !bytes.Equal(got, oldServer) {
		t.Errorf("server.json changed: %s", got)
	}
	t.Logf("summary: state write leftovers through jeagent: %d cases (server.json temp cut every %d byte(s) of %d, app.json temp at 9 cuts): old state kept, leftovers removed, deploys went on in all",
		cases, step, len(newServer))
}

// TestBrokenServerJSONStopsNoDeploy: a server.json that does not parse is
// reported naming the file and position, pauses the cleanup only, and
// `deploy --wait` still completes (it used to wait in silence until its
// timeout, 30 minutes by default, as every run failed).
func TestBrokenServerJSONStopsNoDeploy(t *testing.T) {
	root, _, v2, _ := setup(t, "")
	serverJSON := filepath.Join(root, "sys", "server.json")
	broken := "{\"retention\": {\"keep_releases\": 5,}}\n"
	os.WriteFile(serverJSON, []byte(broken), 0o640)
	r := run(t, root, nil, nil, "deploy", "web", "prod", v2, "--wait", "--timeout", "20s")
	if r.code != 0 {
		t.Fatalf("deploy --wait beside a broken server.json: %+v", r)
	}
	assertLive(t, root, v2, "2")
	request(t, root, v2)
	r = run(t, root, nil, nil, "rollforward")
	if want := "sys/server.json: skipped: cleanup of old releases is paused: " + serverJSON + ":1:35: "; r.code != 0 || !strings.Contains(r.stderr, want) {
		t.Fatalf("rollforward: %+v, want %q", r, want)
	}
	if got, _ := os.ReadFile(serverJSON); string(got) != broken {
		t.Errorf("server.json was rewritten: %q", got)
	}
}

// TestReceiveTruncated: uploads cut short (an SSH session that drops) at
// 16 points are refused and leave nothing; the whole upload then works.
func TestReceiveTruncated(t *testing.T) {
	root := t.TempDir()
	run(t, root, nil, nil, "init")
	files := map[string]string{"x": "1"}
	for i := 0; i < 20; i++ {
		files[fmt.Sprintf("f%02d", i)] = strings.Repeat(fmt.Sprintf("line %d of some file\n", i), 500)
	}
	id, data := makeBundle(t, files)
	refused := 0
	for i := 0; i < 16; i++ {
		n := i * len(data) / 16
		r := run(t, root, nil, data[:n], "receive", "web", "prod", id)
		if r.code == 0 || !strings.Contains(r.stderr, "bundle for "+id+" refused: read bundle: ") {
			t.Fatalf("upload cut at %d of %d bytes: %+v", n, len(data), r)
		}
		if got := names(t, versionsDir(root)); len(got) != 0 {
			t.Fatalf("upload cut at %d: left %v", n, got)
		}
		refused++
	}
	if r := run(t, root, nil, data, "receive", "web", "prod", id); r.code != 0 {
		t.Fatalf("whole upload: %+v", r)
	}
	t.Logf("summary: truncated uploads: %d cut points refused, nothing left; the whole upload accepted", refused)
}
