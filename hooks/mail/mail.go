// Package mail is the built-in hook for apps that declare mail
// ([services] mail = "" in jecloud.toml): a local relay on each server,
// through the provider the app environment's config vars name
// (MAIL_RELAY_URL, or SENDGRID_API_KEY). One Postfix per server, on
// loopback only, with one listener per app environment (SMTP_URL in
// APP/ENV/services.env) whose mail goes, headers as they are, through that
// environment's own SMTP client and credentials; the queue is Postfix's,
// on disk. Status reads that environment's queue and last delivery. See
// docs/services.md.
package mail

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/util"
	"github.com/jecloud/jecloud/hooks/internal/builtin"
	"github.com/jecloud/jecloud/hooks/internal/retry"
	"github.com/jecloud/jecloud/hooks/internal/svcfile"
	"github.com/jecloud/jecloud/internal/appuser"
	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/configvars"
	"github.com/jecloud/jecloud/internal/hook"
	"github.com/jecloud/jecloud/internal/ports"
	"github.com/jecloud/jecloud/internal/sysd"
)

// PortBase is where the listeners' ports start.
const PortBase = 2525

// Unit is Debian's Postfix service.
const Unit = "postfix.service"

// Variables the app gets in services.env.
var appVars = []string{"SMTP_URL", "SMTP_HOST", "SMTP_PORT"}

// Hook is the mail hook.
type Hook struct {
	// PostfixDir is Postfix's configuration directory.
	PostfixDir string
	// ConfDir keeps each environment's part of master.cf, its password map
	// and what status shows.
	ConfDir string
	// Active reports whether the hook can work here (systemd is PID 1).
	Active func() bool
	// UnitDir is where the limits of Postfix's units go
	// (UNITDIR/postfix@.service.d/LimitsDropIn).
	UnitDir string
}

// New returns the hook with its defaults.
func New() *Hook {
	return &Hook{PostfixDir: "/etc/postfix", ConfDir: "/etc/postfix/jecloud", Active: util.IsRunningSystemd, UnitDir: "/etc/systemd/system"}
}

// LimitsDropIn is the drop-in that bounds Debian's postfix@-.service (the
// instance that runs Postfix; postfix.service only starts it), like the
// app units (issue #17): one app that sends without end, or a queue that
// grows, must not take the server. Postfix runs about a dozen processes
// plus one smtpd per connection and one smtp per delivery (at most 100
// each, default_process_limit), each a few MB. CPUWeight 50: the apps get
// twice its share when the CPU is short. Postfix's own sandbox (chroot,
// privilege separation, setgid postdrop) is left to Debian: NoNewPrivileges
// or a syscall filter would break postdrop and its master.
const LimitsDropIn = "jecloud-limits.conf"

const limitsContent = `# Written by jeagent's mail hook (docs/services.md): limits like those of
# the app units, so that mail cannot take the server.
[Service]
TasksMax=512
MemoryHigh=20%
MemoryMax=25%
CPUWeight=50
`

// writeLimits writes LimitsDropIn, reporting whether it changed.
func (h *Hook) writeLimits() (bool, error) {
	if h.UnitDir == "" {
		return false, nil
	}
	dir := filepath.Join(h.UnitDir, "postfix@.service.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	return writeIfChanged(filepath.Join(dir, LimitsDropIn), limitsContent, 0o644)
}

func (h *Hook) Name() string { return "mail" }

// Run sets the relay up in install (so that a wrong provider setting fails
// before the switch) and again in deployed (a restart after `config:set`
// goes straight there); the other phases are not its business. An app
// environment that no longer declares mail is taken out of Postfix.
func (h *Hook) Run(ctx context.Context, req hook.Request, log io.Writer) (hook.Response, error) {
	return builtin.Run(ctx, h, builtin.Options{Service: "mail", Undeclared: true, Systemd: h.Active, Label: "mail"}, req, log)
}

// Install sets the relay up, or removes it when mail is not declared.
func (h *Hook) Install(ctx context.Context, e builtin.Env) error { return h.setUp(ctx, e) }

// Deployed is Install again.
func (h *Hook) Deployed(ctx context.Context, e builtin.Env) error { return h.setUp(ctx, e) }

func (h *Hook) setUp(ctx context.Context, e builtin.Env) error {
	if !e.Declared {
		return h.remove(ctx, e.Req, e.Log)
	}
	return h.install(ctx, e.Req, e.Log)
}

// info is what `jeagent status` reads of an environment's relay.
type info struct {
	Listen string `json:"listen"`
	Relay  string `json:"relay"`
	Name   string `json:"transport"`
}

func (h *Hook) install(ctx context.Context, req hook.Request, log io.Writer) error {
	dir := req.AppDir
	cfgPath := filepath.Join(dir, configvars.FileName)
	vars, err := configvars.Read(cfgPath)
	if err != nil {
		return err
	}
	relay, err := ParseRelay(vars, cfgPath)
	if err != nil {
		return err
	}
	if err := h.ensurePostfix(ctx, log); err != nil {
		return err
	}
	_, gid, err := appuser.Ensure(req.App, req.Env, dir, log)
	if err != nil {
		return err
	}
	e := env{App: req.App, Env: req.Env, Relay: relay, Dir: h.ConfDir}
	if e.Port, err = ports.Allocate(req.Root, dir, "mail", PortBase); err != nil {
		return err
	}
	if err := os.MkdirAll(h.ConfDir, 0o755); err != nil {
		return err
	}
	mapChanged, err := h.writeMap(ctx, e)
	if err != nil {
		return err
	}
	if _, err := writeIfChanged(e.masterPath(), e.Master(), 0o644); err != nil {
		return err
	}
	b, _ := json.Marshal(info{Listen: e.Listen(), Relay: relay.String(), Name: e.Name()})
	if _, err := writeIfChanged(e.infoPath(), string(b)+"\n", 0o644); err != nil {
		return err
	}
	legacy, err := h.takeLegacy(e)
	if err != nil {
		return err
	}
	if err := h.apply(ctx, mapChanged, log); err != nil {
		return err
	}
	if err := greeting(ctx, e.Listen(), 30*time.Second); err != nil {
		return fmt.Errorf("postfix does not answer on %s after its reload: %w (see journalctl -u postfix@-)", e.Listen(), err)
	}
	waiting, err := h.reroute(ctx, NewStatusReader(), e, legacy, log)
	if err != nil {
		return err
	}
	if legacy && waiting == 0 {
		if err := h.dropLegacy(e); err != nil {
			return err
		}
		if err := h.apply(ctx, false, log); err != nil {
			return err
		}
		fmt.Fprintf(log, "mail for %s/%s: transport %s (named before issue #17) removed; it is %s now\n", req.App, req.Env, e.legacyName(), e.Name())
	}
	for k, v := range map[string]string{"SMTP_URL": "smtp://" + e.Listen(), "SMTP_HOST": "127.0.0.1", "SMTP_PORT": fmt.Sprint(e.Port)} {
		if err := svcfile.SetServiceVar(dir, k, v, gid); err != nil {
			return err
		}
	}
	fmt.Fprintf(log, "mail for %s/%s: smtp://%s relays to %s (SMTP_URL in %s)\n", req.App, req.Env, e.Listen(), relay, filepath.Join(dir, appuser.ServicesEnv))
	return nil
}

// remove takes an environment that no longer declares mail out of
// Postfix (mail still queued for it is delivered by nothing: status of the
// server's whole queue is `postqueue -p`).
func (h *Hook) remove(ctx context.Context, req hook.Request, log io.Writer) error {
	e := env{App: req.App, Env: req.Env, Dir: h.ConfDir}
	legacy, err := e.ownsLegacy()
	if err != nil {
		return err
	}
	if _, err := os.Stat(e.masterPath()); errors.Is(err, os.ErrNotExist) && !legacy {
		return nil
	}
	for _, p := range []string{e.masterPath(), e.saslPath(), e.saslPath() + ".db", e.infoPath()} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if legacy {
		if err := h.dropLegacy(e); err != nil {
			return err
		}
	}
	if err := unsetServiceVars(req.AppDir, appVars); err != nil {
		return err
	}
	if err := h.apply(ctx, false, log); err != nil {
		return err
	}
	fmt.Fprintf(log, "mail for %s/%s: no longer declared; its listener and transport are removed\n", req.App, req.Env)
	return nil
}

// ownsLegacy reports whether the part of master.cf of e's legacy name
// (versions before issue #17) is e's: its first line names e. Another app
// environment of the same legacy name never takes it.
func (e env) ownsLegacy() (bool, error) {
	b, err := os.ReadFile(e.legacyPath(".master.cf"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return strings.HasPrefix(string(b), e.legacyOwner()), nil
}

// takeLegacy, when e owns a part of its legacy name, makes that part its
// smtp client only: the listener, on the same port, is the new
// transport's now, and the old client stays for the mail queued for it
// (which names it in its content_filter) until reroute has moved or
// delivered it.
func (h *Hook) takeLegacy(e env) (bool, error) {
	owned, err := e.ownsLegacy()
	if err != nil || !owned {
		return false, err
	}
	p := e.legacyPath(".master.cf")
	b, err := os.ReadFile(p)
	if err != nil {
		return false, err
	}
	part, ok := transportOnly(string(b), e.legacyName())
	if !ok {
		return false, fmt.Errorf("%s: no service %s in it: remove the file (it was written by an older jeagent) and deploy again", p, e.legacyName())
	}
	if _, err := writeIfChanged(p, part, 0o644); err != nil {
		return false, err
	}
	return true, nil
}

// dropLegacy removes the files of e's legacy transport.
func (h *Hook) dropLegacy(e env) error {
	for _, s := range []string{".master.cf", ".sasl", ".sasl.db", ".json"} {
		if err := os.Remove(e.legacyPath(s)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// writeMap writes the root-only password map and its postmap'd .db,
// reporting whether it changed.
func (h *Hook) writeMap(ctx context.Context, e env) (bool, error) {
	p := e.saslPath()
	content := e.SASLMap()
	changed, err := writeIfChanged(p, content, 0o600)
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(p + ".db"); err == nil && !changed {
		return false, nil
	}
	if out, err := exec.CommandContext(ctx, "postmap", "-c", h.PostfixDir, "hash:"+p).CombinedOutput(); err != nil {
		return false, fmt.Errorf("postmap hash:%s: %v: %s", p, err, strings.TrimSpace(string(out)))
	}
	return true, os.Chmod(p+".db", 0o600)
}

// apply writes main.cf's settings and master.cf's JeCloud block when they
// differ from what Postfix has, then starts, restarts or reloads it.
func (h *Hook) apply(ctx context.Context, mapChanged bool, log io.Writer) error {
	restart := false
	for _, kv := range MainSettings {
		out, err := exec.CommandContext(ctx, "postconf", "-c", h.PostfixDir, "-h", kv[0]).Output()
		if err != nil {
			return fmt.Errorf("postconf -h %s: %w: is %s/main.cf there? (apt-get install postfix)", kv[0], err, h.PostfixDir)
		}
		if strings.TrimSpace(string(out)) == kv[1] {
			continue
		}
		if out, err := exec.CommandContext(ctx, "postconf", "-c", h.PostfixDir, "-e", kv[0]+"="+kv[1]).CombinedOutput(); err != nil {
			return fmt.Errorf("postconf -e %s=%s: %v: %s", kv[0], kv[1], err, strings.TrimSpace(string(out)))
		}
		fmt.Fprintf(log, "mail: %s/main.cf: %s = %s\n", h.PostfixDir, kv[0], kv[1])
		restart = true // inet_interfaces needs a restart; the others come with it
	}
	parts, err := readParts(h.ConfDir)
	if err != nil {
		return err
	}
	masterPath := filepath.Join(h.PostfixDir, "master.cf")
	old, err := os.ReadFile(masterPath)
	if err != nil {
		return fmt.Errorf("%w: Postfix's master.cf is missing (apt-get install --reinstall postfix)", err)
	}
	masterChanged, err := writeIfChanged(masterPath, MergeMaster(string(old), h.ConfDir, parts), 0o644)
	if err != nil {
		return err
	}
	limitsChanged := false
	if len(parts) > 0 {
		if limitsChanged, err = h.writeLimits(); err != nil {
			return err
		}
	}
	if len(parts) == 0 && !masterChanged && !restart {
		return nil
	}
	sd, closeFn, err := sysd.Open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	if limitsChanged {
		if err := sd.Reload(ctx); err != nil {
			return err
		}
		fmt.Fprintf(log, "mail: %s/postfix@.service.d/%s: Postfix's limits (TasksMax, MemoryMax, CPUWeight)\n", h.UnitDir, LimitsDropIn)
		restart = true
	}
	if len(parts) > 0 {
		if err := sd.Enable(ctx, []string{Unit}); err != nil {
			return err
		}
	}
	active, _, err := sd.State(ctx, "postfix@-.service")
	if err != nil {
		return err
	}
	switch {
	case active != "active":
		if len(parts) == 0 {
			return nil
		}
		return sd.Restart(ctx, Unit)
	case restart:
		return sd.Restart(ctx, Unit)
	case masterChanged || mapChanged:
		if out, err := exec.CommandContext(ctx, "postfix", "-c", h.PostfixDir, "reload").CombinedOutput(); err != nil {
			return fmt.Errorf("postfix reload: %v: %s", err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// ensurePostfix installs Debian's postfix (preseeded "Local only") and the
// SASL mechanisms its client logs in with, if either is missing.
func (h *Hook) ensurePostfix(ctx context.Context, log io.Writer) error {
	var missing []string
	if _, err := os.Stat("/usr/sbin/postfix"); err != nil {
		missing = append(missing, "postfix")
	}
	if libs, _ := filepath.Glob("/usr/lib/*/sasl2/libplain.so*"); len(libs) == 0 {
		missing = append(missing, "libsasl2-modules")
	}
	if len(missing) == 0 {
		return nil
	}
	fmt.Fprintf(log, "installing %s (Debian's packages)\n", strings.Join(missing, " "))
	seed := exec.CommandContext(ctx, "debconf-set-selections")
	seed.Stdin = strings.NewReader("postfix postfix/main_mailer_type select Local only\n")
	if out, err := seed.CombinedOutput(); err != nil {
		fmt.Fprintf(log, "debconf-set-selections: %v: %s\n", err, out)
	}
	cmd := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "--no-install-recommends"}, missing...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("apt-get install %s: %w", strings.Join(missing, " "), err)
	}
	return nil
}

// writeIfChanged writes a root-owned file crash-safely unless it already
// holds content, reporting whether it changed.
func writeIfChanged(path, content string, perm os.FileMode) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && string(old) == content {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() == perm {
			return false, nil
		}
	}
	return true, atomicfile.WriteFileOwned(path, []byte(content), perm, 0, 0)
}

// unsetServiceVars removes keys from APP/ENV/services.env (dir is APP/ENV).
func unsetServiceVars(dir string, keys []string) error {
	path := filepath.Join(dir, appuser.ServicesEnv)
	vars, err := configvars.Read(path)
	if err != nil {
		return err
	}
	n := len(vars)
	for _, k := range keys {
		delete(vars, k)
	}
	if len(vars) == n {
		return nil
	}
	gid := -1
	if fi, err := os.Stat(path); err == nil {
		gid = fileGID(fi)
	}
	return configvars.Write(path, vars, gid)
}

// greeting waits until an SMTP server at addr says 220.
func greeting(ctx context.Context, addr string, timeout time.Duration) error {
	return retry.Until(ctx, timeout, 200*time.Millisecond, func() error { return greetOnce(addr) })
}

func greetOnce(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "220") {
		return fmt.Errorf("it said %q", strings.TrimSpace(line))
	}
	fmt.Fprint(c, "QUIT\r\n")
	return nil
}

// fileGID is the group that owns a file.
func fileGID(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Gid)
	}
	return -1
}

// Destroy takes the app environment being destroyed out of Postfix, as
// for an environment that no longer declares mail (remove).
func (h *Hook) Destroy(ctx context.Context, e builtin.Env) error {
	return h.remove(ctx, e.Req, e.Log)
}
