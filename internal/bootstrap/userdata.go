package bootstrap

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// DeployUser is the user jepush logs in as on servers it bootstrapped: no
// password, the user's own SSH key, and sudo for jeagent only.
const DeployUser = "jecloud"

// UserDataOptions are the facts a new server's cloud-init needs.
type UserDataOptions struct {
	App, Env, Server string
	// AuthorizedKey is the user's public key (an authorized_keys line).
	AuthorizedKey string
	// AgentSHA256 is the checksum of the jeagent jepush uploads.
	AgentSHA256 string
	// TickSHA256, if set, is the checksum of the jeagent-tick jepush
	// uploads too (TickUpload): installed beside jeagent, it is what the
	// timer runs every minute (docs/agent.md).
	TickSHA256 string
}

// Upload is where jepush puts jeagent on a new server (in the deploy
// user's home); Ready is the file that says the agent is installed and set up.
const (
	Upload     = "/home/" + DeployUser + "/jeagent.upload"
	TickUpload = "/home/" + DeployUser + "/jeagent-tick.upload"
	Ready      = "/var/lib/jecloud/ready"
)

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// UserData renders the cloud-config of a new server. It makes the deploy
// user and starts jecloud-install.service, which waits for jepush to upload
// jeagent over SSH, copies it out of the user's reach, checks its SHA-256,
// installs it and runs `jeagent init`. cloud-init prints the SSH host keys
// on the console at the end of its run, where jepush reads them
// (GetConsoleOutput) to know the server's keys before it first connects.
func UserData(o UserDataOptions) ([]byte, error) {
	if !sha256RE.MatchString(o.AgentSHA256) {
		return nil, fmt.Errorf("jeagent checksum %q: want 64 lowercase hex digits", o.AgentSHA256)
	}
	if o.TickSHA256 != "" && !sha256RE.MatchString(o.TickSHA256) {
		return nil, fmt.Errorf("jeagent-tick checksum %q: want 64 lowercase hex digits", o.TickSHA256)
	}
	if strings.ContainsAny(o.AuthorizedKey, "\n\"\\") || !strings.HasPrefix(o.AuthorizedKey, "ssh-") && !strings.HasPrefix(o.AuthorizedKey, "ecdsa-") {
		return nil, fmt.Errorf("public key %q is not one authorized_keys line", o.AuthorizedKey)
	}
	// Both files must be there and check out before anything is
	// installed: jepush uploads jeagent-tick first, then jeagent.
	present, check, install, remove := "[ -f "+Upload+" ]", "echo '"+o.AgentSHA256+"  '\"$copy\" | sha256sum -c --status -", "", "rm -f \"$copy\" "+Upload
	copyTick, mkTick, missing := "", "", ""
	if o.TickSHA256 != "" {
		mkTick = "tick=$(mktemp /root/jeagent-tick.XXXXXX)"
		present += " && [ -f " + TickUpload + " ]"
		copyTick = "    cp " + TickUpload + " \"$tick\""
		check += " && echo '" + o.TickSHA256 + "  '\"$tick\" | sha256sum -c --status -"
		install = "      install -m 0755 -o root -g root \"$tick\" /usr/local/bin/jeagent-tick"
		remove += " \"$tick\" " + TickUpload
		missing = ", with jeagent-tick of sha256 " + o.TickSHA256 + " at " + TickUpload
	}
	lines := []string{
		"#!/bin/sh",
		"# Installs what jepush uploads: jeagent, and the small program its timer runs if given (JeCloud bootstrap).",
		"set -eu",
		"copy=$(mktemp /root/jeagent.XXXXXX)",
		mkTick,
		"for i in $(seq 1 900); do",
		"  if " + present + "; then",
		"    cp " + Upload + " \"$copy\"",
		copyTick,
		"    if " + check + "; then",
		install,
		"      install -m 0755 -o root -g root \"$copy\" /usr/local/bin/jeagent",
		"      " + remove,
		"      /usr/local/bin/jeagent init",
		"      mkdir -p /var/lib/jecloud && touch " + Ready,
		"      exit 0",
		"    fi",
		"  fi",
		"  sleep 2",
		"done",
		"echo 'no jeagent with sha256 " + o.AgentSHA256 + " was uploaded to " + Upload + missing + " in 30 minutes' >&2",
		"exit 1",
	}
	script := strings.Join(slices.DeleteFunc(lines, func(l string) bool { return l == "" }), "\n")
	unit := strings.Join([]string{
		"[Unit]",
		"Description=JeCloud: install the jeagent jepush uploads",
		"After=network-online.target",
		"[Service]",
		// simple, not oneshot: the wait for the upload must not hold the
		// boot back (the system would stay "starting" until it ends).
		"Type=simple",
		"ExecStart=/usr/local/lib/jecloud/install",
	}, "\n")
	var b strings.Builder
	fmt.Fprintf(&b, "#cloud-config\n# Written by jepush (JeCloud) for %s/%s, server %s.\n", o.App, o.Env, o.Server)
	b.WriteString("locale: C.UTF-8\n")
	fmt.Fprintf(&b, "hostname: %s\n", o.Server)
	b.WriteString("ssh_pwauth: false\ndisable_root: true\n")
	b.WriteString("ssh_genkeytypes: [ed25519, ecdsa, rsa]\n")
	b.WriteString("users:\n")
	fmt.Fprintf(&b, "  - name: %s\n", DeployUser)
	b.WriteString("    gecos: JeCloud deploys\n    shell: /bin/bash\n    lock_passwd: true\n")
	b.WriteString("    sudo: \"ALL=(root) NOPASSWD: /usr/local/bin/jeagent\"\n")
	fmt.Fprintf(&b, "    ssh_authorized_keys:\n      - \"%s\"\n", o.AuthorizedKey)
	b.WriteString("write_files:\n")
	writeFile(&b, "/usr/local/lib/jecloud/install", "0700", script)
	writeFile(&b, "/etc/systemd/system/jecloud-install.service", "0644", unit)
	b.WriteString("runcmd:\n  - [systemctl, start, --no-block, jecloud-install.service]\n")
	b.WriteString("final_message: \"JeCloud: cloud-init done after $UPTIME s\"\n")
	return []byte(b.String()), nil
}

func writeFile(b *strings.Builder, path, mode, content string) {
	fmt.Fprintf(b, "  - path: %s\n    owner: root:root\n    permissions: '%s'\n    content: |\n", path, mode)
	for _, line := range strings.Split(content, "\n") {
		b.WriteString("      " + line + "\n")
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
