// Package systemd holds the systemd units that run jeagent on a server,
// embedded in the binary so that `jeagent init` can install them:
// jeagent-rollforward.service (one roll-forward run, Type=oneshot) and
// jeagent-rollforward.timer (shortly after boot, then every minute).
package systemd

import (
	"embed"
	"os"
	"strings"
)

//go:embed jeagent-rollforward.service jeagent-rollforward.timer
var files embed.FS

// Names of the units.
const (
	Service = "jeagent-rollforward.service"
	Timer   = "jeagent-rollforward.timer"
)

// DefaultExec is where the units expect jeagent.
const DefaultExec = "/usr/local/bin/jeagent"

// Unit is one unit file.
type Unit struct {
	Name    string
	Content []byte
}

// Units returns the unit files, the service first. When exe is not empty and
// not DefaultExec, the service runs exe instead (jeagent installed elsewhere,
// for example /usr/bin by a package).
func Units(exe string) []Unit {
	var us []Unit
	for _, name := range []string{Service, Timer} {
		b, err := files.ReadFile(name)
		if err != nil {
			panic(err) // embedded: cannot happen
		}
		if name == Service && exe != "" && exe != DefaultExec {
			b = []byte(strings.ReplaceAll(string(b), "ExecStart="+DefaultExec+" ", "ExecStart="+exe+" "))
		}
		us = append(us, Unit{Name: name, Content: b})
	}
	return us
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
