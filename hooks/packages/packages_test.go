package packages

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/hook"
)

// exitErr is a command's non-zero exit, as *exec.ExitError reports it.
type exitErr int

func (e exitErr) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
func (e exitErr) ExitCode() int { return int(e) }

// fakeApt is a Debian system in memory: dpkg knows the installed packages,
// the package lists know the available ones once updated (or from the start
// when fresh), and apt-get install moves packages from one to the other.
type fakeApt struct {
	installed map[string]string // package -> dpkg status lines
	available []string          // in the lists after apt-get update
	fresh     bool              // the lists already hold available
	updateErr bool              // apt-get update fails (no network)
	dpkgErr   bool              // dpkg-query fails (a broken database)
	brokenPkg bool              // apt-get install fails in dpkg (a failing postinst)
	cmds      []string
}

func (f *fakeApt) Run(_ context.Context, c Cmd, stdout, stderr io.Writer) error {
	line := c.String()
	if c.Args[0] == "apt-get" {
		if !slices.Equal(c.Env, Env) {
			return fmt.Errorf("apt-get run with env %v, want %v", c.Env, Env)
		}
		line = "[env] " + line
	}
	f.cmds = append(f.cmds, line)
	switch c.Args[0] {
	case "dpkg-query":
		pkg := c.Args[len(c.Args)-1]
		if f.dpkgErr {
			fmt.Fprintln(stderr, "dpkg-query: error: parsing file '/var/lib/dpkg/status' near line 4")
			return exitErr(2)
		}
		st, ok := f.installed[pkg]
		if !ok {
			fmt.Fprintf(stderr, "dpkg-query: no packages found matching %s\n", pkg)
			return exitErr(1)
		}
		io.WriteString(stdout, st)
		return nil
	case "apt-get":
		switch c.Args[1] {
		case "update":
			if f.updateErr {
				fmt.Fprintln(stderr, "E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease")
				return exitErr(100)
			}
			f.fresh = true
			return nil
		case "install":
			fmt.Fprintln(stdout, "Reading package lists...")
			var pkgs []string
			for _, a := range c.Args[2:] {
				if a != "--" && !strings.HasPrefix(a, "-") && !strings.Contains(a, "::") {
					pkgs = append(pkgs, a)
				}
			}
			if f.brokenPkg {
				fmt.Fprintln(stderr, "E: Sub-process /usr/bin/dpkg returned an error code (1)")
				return exitErr(100)
			}
			for _, p := range pkgs {
				if !f.fresh || !slices.Contains(f.available, p) {
					fmt.Fprintf(stderr, "E: Unable to locate package %s\n", p)
					return exitErr(100)
				}
			}
			for _, p := range pkgs {
				f.installed[p] = "installed\n"
			}
			return nil
		}
	}
	return fmt.Errorf("unexpected command %s", line)
}

const installCmd = "[env] apt-get install -q -y --no-install-recommends -o DPkg::Lock::Timeout=120 " +
	"-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --"

func newHook(f *fakeApt) *Hook {
	return &Hook{Runner: f, LookPath: func(p string) (string, error) { return "/usr/bin/" + p, nil }, Euid: func() int { return 0 }}
}

func release(t *testing.T, toml string) string {
	t.Helper()
	dir := t.TempDir()
	if toml != "" {
		if err := os.WriteFile(filepath.Join(dir, "jecloud.toml"), []byte(toml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRun(t *testing.T) {
	const two = "packages = [\"imagemagick\", \"libvips42\"]\n[web]\nhealth = \"/\"\n"
	for _, tc := range []struct {
		name    string
		toml    string
		phase   string
		apt     fakeApt
		want    []string // commands, in order
		wantErr []string // all in the reason
	}{
		{name: "none declared", toml: "[web]\nhealth = \"/\"\n", want: nil},
		{name: "no jecloud.toml", want: nil},
		{name: "empty list", toml: "packages = []\n", want: nil},
		{name: "other phase", toml: two, phase: hook.Prepare, want: nil},
		{name: "all installed", toml: two,
			apt: fakeApt{installed: map[string]string{"imagemagick": "installed\n", "libvips42": "installed\n"}},
			want: []string{
				"dpkg-query -W -f=${db:Status-Status}\\n -- imagemagick",
				"dpkg-query -W -f=${db:Status-Status}\\n -- libvips42",
			}},
		{name: "installed for one architecture of two", toml: "packages = [\"libvips42\"]\n",
			apt:  fakeApt{installed: map[string]string{"libvips42": "config-files\ninstalled\n"}},
			want: []string{"dpkg-query -W -f=${db:Status-Status}\\n -- libvips42"}},
		{name: "one missing, lists fresh", toml: two,
			apt: fakeApt{installed: map[string]string{"imagemagick": "installed\n"}, available: []string{"libvips42"}, fresh: true},
			want: []string{
				"dpkg-query -W -f=${db:Status-Status}\\n -- imagemagick",
				"dpkg-query -W -f=${db:Status-Status}\\n -- libvips42",
				installCmd + " libvips42",
			}},
		{name: "removed, config files left", toml: "packages = [\"libvips42\", \"libvips42\"]\n",
			apt: fakeApt{installed: map[string]string{"libvips42": "config-files\n"}, available: []string{"libvips42"}, fresh: true},
			want: []string{
				"dpkg-query -W -f=${db:Status-Status}\\n -- libvips42",
				installCmd + " libvips42",
			}},
		{name: "stale lists: update once, then install", toml: two,
			apt: fakeApt{installed: map[string]string{}, available: []string{"imagemagick", "libvips42"}},
			want: []string{
				"dpkg-query -W -f=${db:Status-Status}\\n -- imagemagick",
				"dpkg-query -W -f=${db:Status-Status}\\n -- libvips42",
				installCmd + " imagemagick libvips42",
				"[env] apt-get update -q -o DPkg::Lock::Timeout=120",
				installCmd + " imagemagick libvips42",
			}},
		{name: "no such package", toml: "packages = [\"imagemagick\", \"libvips-nope\"]\n",
			apt: fakeApt{installed: map[string]string{}, available: []string{"imagemagick"}},
			want: []string{
				"dpkg-query -W -f=${db:Status-Status}\\n -- imagemagick",
				"dpkg-query -W -f=${db:Status-Status}\\n -- libvips-nope",
				installCmd + " imagemagick libvips-nope",
				"[env] apt-get update -q -o DPkg::Lock::Timeout=120",
				installCmd + " imagemagick libvips-nope",
			},
			wantErr: []string{"install hook packages failed", "jecloud.toml", `"libvips-nope"`, "apt-cache search libvips-nope", "keeps running"}},
		{name: "update fails", toml: "packages = [\"imagemagick\"]\n",
			apt: fakeApt{installed: map[string]string{}, updateErr: true},
			want: []string{
				"dpkg-query -W -f=${db:Status-Status}\\n -- imagemagick",
				installCmd + " imagemagick",
				"[env] apt-get update -q -o DPkg::Lock::Timeout=120",
			},
			wantErr: []string{"E: Unable to locate package imagemagick", "apt-get update failed too (exit status 100): E: Failed to fetch",
				"/etc/apt/sources.list"}},
		{name: "install fails in dpkg", toml: "packages = [\"imagemagick\"]\n",
			apt: fakeApt{installed: map[string]string{}, available: []string{"imagemagick"}, fresh: true, brokenPkg: true},
			want: []string{
				"dpkg-query -W -f=${db:Status-Status}\\n -- imagemagick",
				installCmd + " imagemagick",
				"[env] apt-get update -q -o DPkg::Lock::Timeout=120",
				installCmd + " imagemagick",
			},
			wantErr: []string{"apt-get install imagemagick failed (exit status 100): E: Sub-process /usr/bin/dpkg returned an error code (1)",
				"roll-forward log", "keeps running"}},
		{name: "dpkg database broken", toml: "packages = [\"imagemagick\"]\n",
			apt:     fakeApt{dpkgErr: true},
			want:    []string{"dpkg-query -W -f=${db:Status-Status}\\n -- imagemagick"},
			wantErr: []string{"dpkg-query -W", "exit status 2", "/var/lib/dpkg/status"}},
		{name: "bad name", toml: "packages = [\"ImageMagick\"]\n", want: nil,
			wantErr: []string{"jecloud.toml", `"ImageMagick" is not a Debian package name`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.apt
			if f.installed == nil {
				f.installed = map[string]string{}
			}
			phase := tc.phase
			if phase == "" {
				phase = hook.Install
			}
			var log bytes.Buffer
			_, err := newHook(&f).Run(context.Background(), hook.Request{Phase: phase, ReleaseDir: release(t, tc.toml)}, &log)
			if !slices.Equal(f.cmds, tc.want) {
				t.Errorf("commands:\n  %s\nwant:\n  %s", strings.Join(f.cmds, "\n  "), strings.Join(tc.want, "\n  "))
			}
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("err = %v\nlog:\n%s", err, log.String())
			case tc.wantErr != nil && err == nil:
				t.Fatalf("no error, want %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("reason %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestIdempotent deploys twice: the second run only asks dpkg.
func TestIdempotent(t *testing.T) {
	f := &fakeApt{installed: map[string]string{"imagemagick": "installed\n"}, available: []string{"libvips42"}, fresh: true}
	h := newHook(f)
	req := hook.Request{Phase: hook.Install, ReleaseDir: release(t, "packages = [\"imagemagick\", \"libvips42\"]\n")}
	var log bytes.Buffer
	if _, err := h.Run(context.Background(), req, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "installing OS packages: libvips42\n") {
		t.Errorf("first run's log:\n%s", log.String())
	}
	f.cmds, log = nil, bytes.Buffer{}
	if _, err := h.Run(context.Background(), req, &log); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.cmds {
		if !strings.HasPrefix(c, "dpkg-query ") {
			t.Errorf("second run ran %s", c)
		}
	}
	if !strings.Contains(log.String(), "OS packages already installed: imagemagick, libvips42") {
		t.Errorf("second run's log:\n%s", log.String())
	}
}

func TestNotDebian(t *testing.T) {
	f := &fakeApt{installed: map[string]string{}}
	h := newHook(f)
	h.LookPath = func(p string) (string, error) { return "", exec.ErrNotFound }
	ctx := context.Background()
	if _, err := h.Run(ctx, hook.Request{Phase: hook.Install, ReleaseDir: release(t, "")}, io.Discard); err != nil {
		t.Errorf("nothing declared: %v", err)
	}
	_, err := h.Run(ctx, hook.Request{Phase: hook.Install, ReleaseDir: release(t, "packages = [\"imagemagick\"]\n")}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no dpkg-query") || !strings.Contains(err.Error(), "Debian and Ubuntu") {
		t.Errorf("err = %v", err)
	}
	if len(f.cmds) != 0 {
		t.Errorf("ran %v", f.cmds)
	}
}

func TestNotRoot(t *testing.T) {
	f := &fakeApt{installed: map[string]string{"imagemagick": "installed\n"}}
	h := newHook(f)
	h.Euid = func() int { return 1000 }
	ctx := context.Background()
	if err := h.Ensure(ctx, []string{"imagemagick"}, io.Discard); err != nil {
		t.Errorf("installed already, root not needed: %v", err)
	}
	err := h.Ensure(ctx, []string{"imagemagick", "libvips42"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "sudo apt-get install libvips42") {
		t.Errorf("err = %v", err)
	}
	if slices.ContainsFunc(f.cmds, func(c string) bool { return strings.Contains(c, "apt-get") }) {
		t.Errorf("ran apt-get as non-root: %v", f.cmds)
	}
}

func TestErrorLines(t *testing.T) {
	var log bytes.Buffer
	e := &errorLines{w: &log}
	for _, chunk := range []string{"Reading package lists...\nE: Unable to loc", "ate package x\n", "E: Package 'y' has no installation candidate"} {
		e.Write([]byte(chunk))
	}
	e.flush()
	if got := unknownPackages(e.lines); !slices.Equal(got, []string{"x", "y"}) {
		t.Errorf("unknown = %v from %q", got, e.lines)
	}
	if !strings.HasPrefix(log.String(), "Reading package lists...\nE: Unable to locate package x\n") {
		t.Errorf("log %q", log.String())
	}
}

// TestRealDpkgQuery asks this machine's dpkg, to prove the status parsing
// holds for the real program (it changes nothing).
func TestRealDpkgQuery(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("no dpkg-query here (not Debian-like)")
	}
	h := New()
	for _, tc := range []struct {
		pkg  string
		want bool
	}{
		{"dpkg", true},
		{"jecloud-surely-no-such-package", false},
	} {
		got, err := h.installed(context.Background(), tc.pkg)
		if err != nil || got != tc.want {
			t.Errorf("installed(%q) = %v, %v; want %v", tc.pkg, got, err, tc.want)
		}
	}
	var ee *exec.ExitError
	err := Exec{}.Run(context.Background(), Cmd{Args: []string{"dpkg-query", "-W", "jecloud-surely-no-such-package"}}, io.Discard, io.Discard)
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("dpkg-query of an unknown package: %v, want exit status 1", err)
	}
}

// TestExecStops: a command outliving its context is stopped (SIGTERM).
func TestExecStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Exec{}.Run(ctx, Cmd{Args: []string{"sleep", "30"}}, io.Discard, io.Discard)
	if err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("err = %v after %s", err, time.Since(start))
	}
}

// TestEnsureRefusesHostileNames: a package name reaches apt-get's command
// line here, whoever called Ensure; apt-get reads "NAME-" as "remove NAME"
// and "-o..." as an option. Nothing runs for such a list.
func TestEnsureRefusesHostileNames(t *testing.T) {
	for _, name := range []string{"openssh-server-", "-oAPT::Get::Purge=true", "--purge", "a", "vim=2:9.0", "vim/bookworm", "vim:amd64", "Vim", "x\nremove"} {
		t.Run(name, func(t *testing.T) {
			f := &fakeApt{installed: map[string]string{}}
			err := newHook(f).Ensure(context.Background(), []string{"curl", name}, io.Discard)
			if err == nil || !strings.Contains(err.Error(), "not a Debian package name") {
				t.Errorf("err = %v, want a refusal naming the package", err)
			}
			if len(f.cmds) != 0 {
				t.Errorf("ran %q, want nothing run", f.cmds)
			}
		})
	}
}
