package node

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/appspec"
	"github.com/jecloud/jecloud/internal/oneoff"
)

// TestOneOffMatchesUnits: a one-off process (the release command, `jeagent
// run`) gets what the app's units get: the same user, directory,
// EnvironmentFiles, limits, sandbox and variables. Only what makes a unit
// long-running (ExecStart, Restart, ...) differs.
func TestOneOffMatchesUnits(t *testing.T) {
	for _, node := range []bool{true, false} {
		t.Run(map[bool]string{true: "node", false: "procfile only"}[node], func(t *testing.T) { oneOffMatchesUnits(t, node) })
	}
}

func oneOffMatchesUnits(t *testing.T, node bool) {
	root := t.TempDir()
	release := filepath.Join(root, "shop", "prod", "source", "versions", "0123456789ab")
	os.MkdirAll(filepath.Join(release, ".jecloud"), 0o755)
	os.WriteFile(filepath.Join(release, "Procfile"), []byte("worker: ./w\n"), 0o644)
	nodeBin := ""
	if node {
		os.WriteFile(filepath.Join(release, "package.json"), []byte(`{"name":"shop"}`), 0o644)
		os.WriteFile(filepath.Join(release, ".jecloud", "node-version"), []byte("20.11.1\n"), 0o644)
		nodeBin = filepath.Join(root, "sys", "runtimes", "node", "20.11.1", "bin")
	}
	limits := appspec.Limits{Memory: "1G", Tasks: 64, CPUWeight: 50}
	u := appUnits{App: "shop", Env: "prod", User: "jc-shop_prod", Root: root, AppDir: filepath.Join(root, "shop", "prod"),
		ReleaseDir: release, NodeBin: nodeBin,
		Processes: map[string]string{"worker": "./w"}, Limits: func(string) appspec.Limits { return limits },
		VarsFile: release + ".vars.env"}
	rt, ok, err := New().Runtime(root, release)
	if err != nil || ok != node {
		t.Fatalf("Runtime: claimed %v (want %v), %v", ok, node, err)
	}
	p := oneoff.Process{Root: root, App: "shop", Env: "prod", AppDir: u.AppDir, ReleaseDir: release, User: u.User, Runtime: rt, Limits: limits,
		VarsFile: release + ".vars.env"}

	unitOnly := map[string]bool{"Type": true, "ExecStart": true, "Restart": true, "RestartSec": true, "KillSignal": true,
		"KillMode": true, "TimeoutStopSec": true, "SyslogIdentifier": true, "Environment": true}
	var unitOpts, unitEnv, oneOpts, oneEnv []string
	for _, o := range u.service("worker") {
		switch {
		case o.Section != "Service":
		case o.Name == "Environment":
			unitEnv = append(unitEnv, o.Value)
		case !unitOnly[o.Name]:
			unitOpts = append(unitOpts, o.Name+"="+o.Value)
		}
	}
	for _, o := range p.Options() {
		oneOpts = append(oneOpts, o.Name+"="+o.Value)
	}
	for k, v := range p.Environment() {
		oneEnv = append(oneEnv, systemdQuote(k+"="+v))
	}
	sort.Strings(unitOpts)
	sort.Strings(oneOpts)
	sort.Strings(unitEnv)
	sort.Strings(oneEnv)
	if a, b := strings.Join(unitOpts, "\n"), strings.Join(oneOpts, "\n"); a != b {
		t.Errorf("options differ:\nunit:\n%s\none-off:\n%s", a, b)
	}
	if a, b := strings.Join(unitEnv, "\n"), strings.Join(oneEnv, "\n"); a != b {
		t.Errorf("variables differ:\nunit:\n%s\none-off:\n%s", a, b)
	}
}
