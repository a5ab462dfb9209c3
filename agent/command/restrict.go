package command

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jecloud/jecloud/internal/state"
	"github.com/urfave/cli/v2"
)

// configuredRoot is the one state root that a user who runs jeagent through
// sudo may name. It is fixed when the program is built (the packages use
// /var/cloud; tests build with -ldflags "-X ...configuredRoot=DIR"), never
// read from a flag, the environment or a file that user could write.
var configuredRoot = state.DefaultRoot

// sudoVerbs are the commands jepush runs on a server through `sudo jeagent`,
// the only ones a user who is not root may run there (docs/agent.md). Each
// takes names, version IDs, numbers and config vars, all checked where they
// are used; none takes a path or a command. "git" is allowed for its setup
// only: its repository is an SSH URL, checked, and fetched as root with the
// server's own key and configuration. EC2 environments add follow (a
// bucket, a region and an S3 endpoint: addresses, not paths; what the
// server then deploys is checked by hash like any push) and sync. The
// front door's verbs take host names (names.CheckHost: a-z, 0-9, '-' and
// dots, nothing that reads as a flag or a path) and set a flag.
// "destroy" removes one app environment, as the user's own `jepush
// apps:destroy`: a deploy user may already push anything into it.
// "run" alone takes a command: it runs as the app's own user in the app's
// sandbox (User=, NoNewPrivileges=, no capabilities: never root), which
// is what the user's pushes run as already; its argv goes to systemd-run
// after "--", never through a shell or among systemd-run's options.
var sudoVerbs = []string{
	"receive", "has", "manifest", "deploy", "status", "logs", "rollback",
	"config", "config:set", "config:unset", "ps", "ps:scale", "place", "backups", "git setup",
	"follow", "sync", "releases", "restart", "run",
	"domains", "domains:add", "domains:remove", "maintenance:on", "maintenance:off",
	"destroy",
}

// restricted is set when jeagent runs on behalf of a user who is not root
// (see restrict); faultFromEnv then reads nothing.
var restricted bool

// requester is the user on whose behalf jeagent runs with root's rights,
// as sudo (SUDO_USER, SUDO_UID), doas (DOAS_USER) and pkexec (PKEXEC_UID)
// record it: tool is "" when root runs it itself. Those tools set these
// variables themselves, whatever the caller's environment held; a caller
// without root's rights who sets one only restricts itself.
func requester() (tool, user string) {
	if uid, ok := os.LookupEnv("SUDO_UID"); ok && uid != "0" {
		return "sudo", os.Getenv("SUDO_USER")
	}
	if u, ok := os.LookupEnv("DOAS_USER"); ok && u != "root" {
		return "doas", u
	}
	if uid, ok := os.LookupEnv("PKEXEC_UID"); ok && uid != "0" {
		return "pkexec", "uid " + uid
	}
	return "", ""
}

// mayRunShellAsRoot asks sudo whether user may run a shell as root, that is
// whether that user is an administrator who gains nothing from jeagent
// (`sudo -l -U USER /bin/sh`, which root may ask without a password). An
// error or no answer within 5 s counts as no.
var mayRunShellAsRoot = func(user string) bool {
	if user == "" || strings.HasPrefix(user, "-") {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "sudo", "-n", "-l", "-U", user, "/bin/sh").Run() == nil
}

// restrict is the boundary of `sudo jeagent` (docs/agent.md): for a user
// who may run jeagent as root but not a shell (the deploy user of
// cloud-init's sudoers line), it allows exactly the verbs jepush needs
// (sudoVerbs), on the configured root only, and refuses everything else
// before any of it runs. Root itself, and an administrator whom sudo lets
// run anything (`sudo jeagent init` from the .deb's install, say), keep
// the whole command line.
func restrict(c *cli.Context) error {
	tool, user := requester()
	if tool == "" || (tool == "sudo" && mayRunShellAsRoot(user)) {
		return nil
	}
	restricted = true
	who := fmt.Sprintf("%s (through %s)", user, tool)
	args := c.Args().Slice()
	if len(args) == 0 { // `jeagent --help`: the app's help, which runs nothing
		return nil
	}
	verb := args[0]
	if cmd := c.App.Command(verb); cmd != nil {
		verb = cmd.Name
	}
	if verb == "git" && len(args) > 1 {
		verb += " " + args[1]
	}
	if !slices.Contains(sudoVerbs, verb) {
		return &exitError{code: 2, err: fmt.Errorf("jeagent %s is for root only, and this run is on behalf of %s, "+
			"who may run jeagent as root but not a shell: jeagent then runs only what jepush needs (%s); "+
			"log in as root for the rest", verb, who, strings.Join(sudoVerbs, ", "))}
	}
	if root := c.String("root"); filepath.Clean(root) != filepath.Clean(configuredRoot) {
		return &exitError{code: 2, err: fmt.Errorf("--root %q (or JECLOUD_ROOT): on behalf of %s, jeagent works on %s only: "+
			"leave --root out, or log in as root to use another state root", root, who, configuredRoot)}
	}
	return nil
}
