package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestSecretsNeverLeak sets config vars with recognisable values (on stdin
// and on the command line), deploys with a user hook that prints its whole
// environment and request to the log, fails a deployment, and greps every
// output and every file under the root: the values are in config.env only.
func TestSecretsNeverLeak(t *testing.T) {
	const (
		viaStdin = "zq-stdin-secret-7f3a9c"
		viaArgv  = "zq-argv-secret-51be02"
	)
	root := t.TempDir()
	run(t, root, nil, nil, "init")
	// The hook dumps what it is given (environment, request) to stderr,
	// which goes to the log, and fails on the "broken" release.
	userHook(t, root, `env >&2; cat >&2; [ -e "$JECLOUD_RELEASE_DIR/broken" ] && { echo "broken release" >&2; exit 1; }; exit 0`)
	v1, d1 := makeBundle(t, map[string]string{"x": "1"})
	v2, d2 := makeBundle(t, map[string]string{"x": "2", "broken": ""})
	run(t, root, nil, d1, "receive", "web", "prod", v1)
	run(t, root, nil, d2, "receive", "web", "prod", v2)
	var outputs []string
	keep := func(r result) result { outputs = append(outputs, r.stdout, r.stderr); return r }
	if r := keep(run(t, root, nil, nil, "deploy", "web", "prod", v1, "--wait")); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	if r := keep(run(t, root, nil, []byte(`{"DB_PASSWORD": "`+viaStdin+`"}`), "config:set", "web", "prod", "--stdin", "--wait")); r.code != 0 {
		t.Fatalf("config:set --stdin: %+v", r)
	}
	if r := keep(run(t, root, nil, nil, "config:set", "web", "prod", "API_KEY="+viaArgv, "--wait")); r.code != 0 {
		t.Fatalf("config:set: %+v", r)
	}
	if r := keep(run(t, root, nil, nil, "deploy", "web", "prod", v2, "--wait")); r.code == 0 {
		t.Fatalf("deploy of the broken release: %+v", r)
	}
	for _, args := range [][]string{{"status"}, {"status", "--json"}, {"status", "web", "prod"}, {"rollforward", "--dry-run"}, {"has", "web", "prod", v1}} {
		keep(run(t, root, nil, nil, args...))
	}
	if r := run(t, root, nil, nil, "config", "web", "prod"); !strings.Contains(r.stdout, viaStdin) || !strings.Contains(r.stdout, viaArgv) {
		t.Fatalf("config does not show the vars (the test would prove nothing): %+v", r)
	}
	log, err := os.ReadFile(filepath.Join(root, "sys", "logs", "rollforward.log"))
	if err != nil || !strings.Contains(string(log), "JECLOUD_PHASE=deployed") || !strings.Contains(string(log), `"phase":"deployed"`) {
		t.Fatalf("the log lacks the hook's dump of its environment and request: %v", err)
	}
	for i, out := range outputs {
		for _, secret := range []string{viaStdin, viaArgv} {
			if strings.Contains(out, secret) {
				t.Errorf("output %d shows a config var:\n%s", i, out)
			}
		}
	}
	files := 0
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		files++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		has := bytes.Contains(b, []byte(viaStdin)) || bytes.Contains(b, []byte(viaArgv))
		if has != (filepath.Base(p) == "config.env") {
			t.Errorf("%s: holds the config vars: %v", p, has)
		}
		return nil
	})
	t.Logf("summary: config vars: 2 values (stdin, argv) x %d outputs (deploy, config:set, status, status --json, dry run) and %d files under the root (log with a hook dumping env and stdin): found in config.env only",
		len(outputs), files)
}

// TestStatePermissions: with a umask that would make files world-writable,
// the state files are 0640 (config.env too, root's group or the app's),
// the log 0600, and nothing under sys/ or the app environments' state is
// writable by group or others.
func TestStatePermissions(t *testing.T) {
	root := filepath.Join(t.TempDir(), "cloud") // made by init
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	run(t, root, nil, nil, "init")
	userHook(t, root, "")
	v1, d1 := makeBundle(t, map[string]string{"x": "1"})
	run(t, root, nil, d1, "receive", "web", "prod", v1)
	if r := run(t, root, nil, []byte(`{"TOKEN": "t"}`), "config:set", "web", "prod", "--stdin", "--no-restart"); r.code != 0 {
		t.Fatalf("config:set: %+v", r)
	}
	if r := run(t, root, nil, nil, "deploy", "web", "prod", v1, "--wait"); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	versions := versionsDir(root)
	for _, tc := range []struct {
		path string
		mode fs.FileMode
	}{
		{filepath.Join(root, "sys", "server.json"), 0o640},
		{filepath.Join(root, web, "app.json"), 0o640},
		{filepath.Join(root, web, "config.env"), 0o640},
		{filepath.Join(versions, v1+".received.json"), 0o640},
		{filepath.Join(root, "sys", "logs", "rollforward.log"), 0o600},
	} {
		fi, err := os.Stat(tc.path)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if fi.Mode().Perm() != tc.mode {
			t.Errorf("%s: mode %04o, want %04o", tc.path, fi.Mode().Perm(), tc.mode)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != uint32(os.Geteuid()) {
			t.Errorf("%s: owner uid %d", tc.path, st.Uid)
		}
	}
	// Nothing the agent keeps (state, locks, logs, pids) may be written by others.
	checked := 0
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == versions {
			return filepath.SkipDir // releases: the app's files, as bundled
		}
		if filepath.Base(p) == "calls.log" {
			return nil // the test hook's own file
		}
		fi, err := d.Info()
		if err != nil || fi.Mode()&fs.ModeSymlink != 0 {
			return err
		}
		checked++
		if fi.Mode().Perm()&0o022 != 0 {
			t.Errorf("%s: mode %04o is writable by group or others", p, fi.Mode().Perm())
		}
		return nil
	})
	t.Logf("summary: permissions with umask 0: 5 state, config and log files at their modes; %d paths under the root outside releases, none writable by group or others", checked)
}
