//go:build e2e

// Package e2e_test runs JeCloud end to end on real Debian servers booted by
// internal/lab (systemd-nspawn containers with systemd as PID 1). It needs
// root and is built only with the e2e tag: `make e2e`. See docs/lab.md.
package e2e_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/lab"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// binaries builds a static jeagent and jeagent-tick (for the servers) and
// jepush (for this host) once per run and returns the paths of jeagent and
// jepush; jeagent-tick is beside jeagent.
func binaries(t testing.TB) (jeagent, jepush string) {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "jecloud-e2e-bin-")
		if buildErr != nil {
			return
		}
		for _, b := range []struct{ out, pkg string }{{"jeagent", "./agent"}, {"jeagent-tick", "./agent/tick"}, {"jepush", "./client"}} {
			cmd := exec.Command("go", "build", "-trimpath", "-tags", "urfave_cli_no_docs", "-o", filepath.Join(buildDir, b.out), b.pkg)
			cmd.Dir = repoRoot()
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = &buildError{b.pkg, err, string(out)}
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "jeagent"), filepath.Join(buildDir, "jepush")
}

type buildError struct {
	pkg string
	err error
	out string
}

func (e *buildError) Error() string { return "go build " + e.pkg + ": " + e.err.Error() + "\n" + e.out }

func TestMain(m *testing.M) {
	code := m.Run()
	if err := lab.Cleanup(); err != nil {
		println("lab cleanup:", err.Error())
		code = 1
	}
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Dir(wd) // tests run in e2e/
}

// writeFiles writes files (path relative to dir -> content) into dir.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// jepushTo returns a function that runs jepush with args and `--host
// root@SERVER` as a user whose SSH setup reaches srv (lab.SSHHome), and
// returns its exit code and output.
func jepushTo(t testing.TB, jepush string, srv *lab.Server) func(args ...string) (int, string) {
	home := lab.SSHHome(t, srv)
	return func(args ...string) (int, string) {
		cmd := exec.Command(jepush, append(args, "--host", "root@"+srv.Addr.String())...)
		cmd.Env = append(os.Environ(), "HOME="+home, "SSH_AUTH_SOCK=", "NO_COLOR=1")
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(out)
	}
}

// appState is the part of app.json the tests look at.
type appState struct {
	CurrentVersion string `json:"current_version"`
	Deployment     *struct {
		Version string `json:"version"`
		State   string `json:"state"`
	} `json:"deployment"`
	RecentFailedDeployments []struct {
		Version string `json:"version"`
		Reason  string `json:"reason"`
	} `json:"recent_failed_deployments"`
	Git *struct {
		Built *struct {
			Commit  string `json:"commit"`
			Version string `json:"version"`
		} `json:"built"`
	} `json:"git"`
}

func readApp(t *testing.T, srv *lab.Server, app, env string) appState {
	t.Helper()
	var a appState
	b, err := srv.ReadFile("/var/cloud/" + app + "/" + env + "/app.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("app.json: %v\n%s", err, b)
	}
	return a
}

// eventually polls cond every 200 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func contains(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}
