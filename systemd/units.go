// Package systemd holds the systemd units that run jeagent on a server,
// embedded in the binary so that `jeagent init` can install them:
// jeagent-rollforward.service (one roll-forward run, Type=oneshot: through
// jeagent-tick when it is installed beside jeagent) and
// jeagent-rollforward.timer (shortly after boot, then every minute); and
// the front door: jecloud-haproxy.service (HAProxy on ports 80 and 443)
// and jecloud-proxy.service (Caddy behind it on loopback).
package systemd

import (
	"embed"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

//go:embed jeagent-rollforward.service jeagent-rollforward.timer jeagent-webhook.socket jeagent-webhook.service jecloud-proxy.service jecloud-haproxy.service
var files embed.FS

// Names of the units.
const (
	Service        = "jeagent-rollforward.service"
	Timer          = "jeagent-rollforward.timer"
	WebhookSocket  = "jeagent-webhook.socket"
	WebhookService = "jeagent-webhook.service"
	ProxyService   = "jecloud-proxy.service"
	HAProxyService = "jecloud-haproxy.service"
)

// ProxyUnit returns the front door's Caddy service (docs/routing.md).
func ProxyUnit() Unit { return embedded(ProxyService) }

// HAProxyUnit returns the front door's HAProxy service (docs/routing.md).
func HAProxyUnit() Unit { return embedded(HAProxyService) }

func embedded(name string) Unit {
	b, err := files.ReadFile(name)
	if err != nil {
		panic(err) // embedded: cannot happen
	}
	return Unit{Name: name, Content: b}
}

// DefaultWebhookPort is where the git webhook listens unless told.
const DefaultWebhookPort = 9100

// WebhookUnits returns the git webhook's socket and service (running exe;
// "" means DefaultExec). The socket listens on port of the loopback
// address, or of all addresses if listenAll.
func WebhookUnits(exe string, port int, listenAll bool) []Unit {
	if exe == "" {
		exe = DefaultExec
	}
	sock, err := files.ReadFile(WebhookSocket)
	if err != nil {
		panic(err) // embedded: cannot happen
	}
	svc, err := files.ReadFile(WebhookService)
	if err != nil {
		panic(err)
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	if listenAll {
		listen = strconv.Itoa(port)
	}
	return []Unit{
		{Name: WebhookSocket, Content: []byte(strings.Replace(string(sock), "ListenStream=127.0.0.1:9100\n", "ListenStream="+listen+"\n", 1))},
		{Name: WebhookService, Content: []byte(strings.Replace(string(svc), "ExecStart="+DefaultExec+" ", "ExecStart="+exe+" ", 1))},
	}
}

// DefaultExec is where the units expect jeagent, and TickName the name of
// jeagent-tick, the lean program the timer's service runs when it is
// installed beside jeagent (see internal/tick).
const (
	DefaultExec = "/usr/local/bin/jeagent"
	TickName    = "jeagent-tick"
)

// execLine is the service's ExecStart in the embedded file.
const execLine = "ExecStart=/usr/local/bin/jeagent-tick --agent /usr/local/bin/jeagent\n"

// Unit is one unit file.
type Unit struct {
	Name    string
	Content []byte
}

// Units returns the unit files, the service first. The service runs
// `TICK --agent EXE` when tick is set, else `EXE rollforward`; exe ""
// means DefaultExec.
func Units(exe, tick string) []Unit {
	if exe == "" {
		exe = DefaultExec
	}
	line := "ExecStart=" + exe + " rollforward\n"
	if tick != "" {
		line = "ExecStart=" + tick + " --agent " + exe + "\n"
	}
	var us []Unit
	for _, name := range []string{Service, Timer} {
		b, err := files.ReadFile(name)
		if err != nil {
			panic(err) // embedded: cannot happen
		}
		if name == Service {
			b = []byte(strings.Replace(string(b), execLine, line, 1))
		}
		us = append(us, Unit{Name: name, Content: b})
	}
	return us
}

// Tick returns jeagent-tick's path when it is installed beside exe, else "".
func Tick(exe string) string {
	p := filepath.Join(filepath.Dir(exe), TickName)
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return p
	}
	return ""
}

// Exec is the path of the running jeagent, for the ExecStart of units that
// run it: DefaultExec when that is this binary (or a link to it), else where
// this binary is (/usr/bin/jeagent from a package, for example).
func Exec() string {
	exe, err := os.Executable()
	if err != nil {
		return DefaultExec
	}
	a, err1 := os.Stat(exe)
	b, err2 := os.Stat(DefaultExec)
	if err1 == nil && err2 == nil && os.SameFile(a, b) {
		return DefaultExec
	}
	return exe
}
