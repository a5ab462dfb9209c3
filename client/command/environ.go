package command

import (
	"os"
	"os/user"
	"path/filepath"

	"golang.org/x/term"

	"github.com/jecloud/jecloud/internal/remote"
)

// The environment variables jepush reads are read here, in the command
// layer, and handed down as values (issue 18.6). Others: JECLOUD_ROOT and
// USER in target.go, JEPUSH_TREE_CACHE in treeCacheDir, the AWS ones and
// JEPUSH_AGENT_BINARY in ec2.go.

// sshOptions are the SSH facts of the user running jepush: the home
// directory (~, ~/.ssh/config, the default keys and known_hosts), the login
// name, SSH_AUTH_SOCK, and JEPUSH_SSH_CONFIG (another ssh config file).
func sshOptions() remote.SSHOptions {
	return remote.SSHOptions{
		Home:        homeDir(),
		LocalUser:   localUser(),
		ConfigFile:  os.Getenv("JEPUSH_SSH_CONFIG"),
		AgentSocket: os.Getenv("SSH_AUTH_SOCK"),
	}
}

// homeDir is the user's home directory ($HOME), else /.
func homeDir() string {
	if h, err := os.UserHomeDir(); err == nil {
		return h
	}
	return "/"
}

// localUser is the user's login name, else $USER.
func localUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}

// knownHostsFiles are the files given with --known-hosts, else the user's
// ~/.ssh/known_hosts.
func knownHostsFiles(given []string) []string {
	if len(given) > 0 {
		return given
	}
	return []string{filepath.Join(homeDir(), ".ssh", "known_hosts")}
}

// canRedraw reports whether f is a terminal that can redraw a line
// (TERM is not "dumb").
func canRedraw(f *os.File) bool {
	return term.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb"
}

// canColour reports whether output to f may be coloured: f is a terminal and
// NO_COLOR (https://no-color.org) is not set.
func canColour(f *os.File) bool {
	return os.Getenv("NO_COLOR") == "" && canRedraw(f)
}
