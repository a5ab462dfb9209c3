// Package version says which build of JeCloud is running: the version and
// commit stamped at build (the Makefile's -X flags, else the module and VCS
// information Go records), and the protocol version jepush and jeagent speak
// to each other. All three programs print it for --version.
package version

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// Protocol is the version of what jepush asks of jeagent (its commands,
// their arguments and outputs). It goes up by one when a jepush needs an
// agent command or flag that an older agent lacks, or the other way round.
// An agent that does not say its protocol speaks protocol 0.
const Protocol = 1

// Set by the Makefile: -ldflags "-X github.com/jecloud/jecloud/internal/version.Version=...".
var (
	Version = ""
	Commit  = ""
)

// Info is what --version prints.
type Info struct {
	Program  string `json:"program"`
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Modified bool   `json:"modified,omitempty"` // built from a work tree with changes
	Protocol int    `json:"protocol"`
	Go       string `json:"go"`
}

// Get returns the build's information for program.
func Get(program string) Info {
	i := Info{Program: program, Version: Version, Commit: Commit, Protocol: Protocol, Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if i.Commit == "" {
					i.Commit = s.Value
				}
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
	}
	if i.Version == "" {
		i.Version = "devel"
	}
	if len(i.Commit) > 12 {
		i.Commit = i.Commit[:12]
	}
	return i
}

// String is the one line of --version: "jepush 0.1.0+git42.abc (commit
// abc, protocol 1, go1.23.4)".
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (", i.Program, i.Version)
	if i.Commit != "" {
		b.WriteString("commit " + i.Commit)
		if i.Modified {
			b.WriteString(" with local changes")
		}
		b.WriteString(", ")
	}
	fmt.Fprintf(&b, "protocol %d, %s)", i.Protocol, i.Go)
	return b.String()
}

// JSON is --version --json.
func (i Info) JSON() string {
	out, _ := json.Marshal(i)
	return string(out)
}

// protocolPrefix starts the line with which jeagent states its protocol
// (in the output of `jeagent has`).
const protocolPrefix = "jeagent-protocol: "

// ProtocolLine returns the line the agent prints, newline included.
func ProtocolLine() string { return protocolPrefix + strconv.Itoa(Protocol) + "\n" }

// ParseProtocol returns the protocol an agent stated in out, or 0 when it
// stated none (it predates protocol 1).
func ParseProtocol(out string) int {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), protocolPrefix); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
				return n
			}
		}
	}
	return 0
}

// Mismatch returns a warning for jepush when the agent on server speaks
// protocol agent, or "" when it speaks jepush's.
func Mismatch(server string, agent int) string {
	switch {
	case agent == Protocol:
		return ""
	case agent < Protocol:
		return fmt.Sprintf("the agent on %s speaks protocol %d and this jepush protocol %d: some commands may fail there. "+
			"Upgrade the agent: install the jeagent .deb of this release on the server (sudo apt install ./jeagent_VERSION_ARCH.deb), "+
			"or copy this release's jeagent over /usr/local/bin/jeagent and run sudo jeagent init (docs/agent.md)", server, agent, Protocol)
	default:
		return fmt.Sprintf("the agent on %s speaks protocol %d, newer than this jepush (protocol %d): some commands may fail. "+
			"Upgrade jepush to the release of the server's jeagent (jeagent --version there tells which)", server, agent, Protocol)
	}
}

// Asked reports whether args (args[0] is the program) ask for the version
// alone: --version (or -v, -version), with --json or not.
func Asked(args []string) (asked, asJSON bool) {
	if len(args) < 2 || len(args) > 3 {
		return false, false
	}
	for _, a := range args[1:] {
		switch a {
		case "--version", "-version", "-v":
			asked = true
		case "--json", "-json":
			asJSON = true
		default:
			return false, false
		}
	}
	return asked, asked && asJSON
}

// Print writes program's version to w as --version does.
func Print(w io.Writer, program string, asJSON bool) {
	i := Get(program)
	if asJSON {
		fmt.Fprintln(w, i.JSON())
		return
	}
	fmt.Fprintln(w, i.String())
}
