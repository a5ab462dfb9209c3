package remote

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sshconfig "github.com/kevinburke/ssh_config"
)

// SSHOptions are the local facts SSH connections depend on. This package
// reads no environment variable: jepush's command layer fills them in from
// the user's (client/command's sshOptions); tests point them elsewhere.
type SSHOptions struct {
	// Home is the home directory for ~ and the default files ("": /).
	Home string
	// ConfigFile is the ssh config file ("": HOME/.ssh/config; "none": none).
	ConfigFile string
	// SystemConfigFile ("": /etc/ssh/ssh_config; "none": none).
	SystemConfigFile string
	// GlobalKnownHostsFiles are read after the user's known_hosts files
	// (nil: /etc/ssh/ssh_known_hosts and ssh_known_hosts2; the ssh config's
	// GlobalKnownHostsFile wins over both).
	GlobalKnownHostsFiles []string
	// AgentSocket is the SSH agent's socket ("": no agent). The ssh
	// config's IdentityAgent wins.
	AgentSocket string
	// LocalUser is the login name when neither the target nor the ssh
	// config names one (%u in ssh config tokens).
	LocalUser string
	// ConnectTimeout limits TCP connect plus SSH handshake (0: the ssh
	// config's ConnectTimeout, else 10 s).
	ConnectTimeout time.Duration
	// KeepaliveInterval and KeepaliveCountMax: a keepalive is sent every
	// interval and the connection is dropped after that many unanswered in
	// a row (0: the ssh config's ServerAliveInterval/ServerAliveCountMax,
	// else 15 s and 3).
	KeepaliveInterval time.Duration
	KeepaliveCountMax int
}

// Defaults for what neither the options nor the ssh config set.
const (
	DefaultConnectTimeout    = 10 * time.Second
	DefaultKeepaliveInterval = 15 * time.Second
	DefaultKeepaliveCountMax = 3
)

// hostConfig is everything needed to connect to one host, ssh config applied.
type hostConfig struct {
	Alias          string // as the user wrote it (without user and port)
	HostName       string
	Port           int
	User           string
	IdentityFiles  []string
	IdentitiesOnly bool
	// ExplicitIdentities: IdentityFile was set (else the defaults are tried
	// and missing ones are not worth a note).
	ExplicitIdentities bool
	ProxyJump          []string
	KnownHostsFiles    []string
	HostKeyAlias       string
	AgentSocket        string
	ConnectTimeout     time.Duration
	KeepaliveInterval  time.Duration
	KeepaliveCountMax  int
	// NotStrict: the ssh config has StrictHostKeyChecking no or accept-new,
	// which jepush does not honour; said in the unknown-host message.
	NotStrict bool
}

// Addr returns HostName:Port for dialling.
func (h *hostConfig) Addr() string {
	return net.JoinHostPort(h.HostName, strconv.Itoa(h.Port))
}

// sshConfigs are the parsed ssh config files, user's first.
type sshConfigs struct {
	files []*sshconfig.Config
}

func (o *SSHOptions) home() string {
	if o.Home != "" {
		return o.Home
	}
	return "/"
}

func (o *SSHOptions) loadConfigs() (*sshConfigs, error) {
	user := o.ConfigFile
	if user == "" {
		user = filepath.Join(o.home(), ".ssh", "config")
	}
	sys := o.SystemConfigFile
	if sys == "" {
		sys = "/etc/ssh/ssh_config"
	}
	var cs sshConfigs
	for _, p := range []string{user, sys} {
		if p == "none" {
			continue
		}
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ssh config: %w", err)
		}
		c, err := sshconfig.DecodeBytes(neutraliseMatch(data))
		if err != nil {
			return nil, fmt.Errorf("ssh config %s: %w", p, err)
		}
		cs.files = append(cs.files, c)
	}
	return &cs, nil
}

// neutraliseMatch turns Match blocks the ssh_config library cannot parse
// (it knows "Match all" and "Match host"; "exec" it refuses on purpose)
// into a Host block that matches nothing, so that a ~/.ssh/config with,
// say, "Match exec ..." still works for jepush: those blocks are ignored.
func neutraliseMatch(data []byte) []byte {
	lines := strings.SplitAfter(string(data), "\n")
	for i, l := range lines {
		f := strings.Fields(strings.Replace(l, "=", " ", 1))
		if len(f) < 2 || !strings.EqualFold(f[0], "match") {
			continue
		}
		if c := strings.ToLower(f[1]); c != "all" && c != "host" {
			lines[i] = "Host jepush-ignores-this-match-block\n"
		}
	}
	return []byte(strings.Join(lines, ""))
}

// get returns the first value of key for alias, as OpenSSH does.
func (cs *sshConfigs) get(alias, key string) string {
	for _, c := range cs.files {
		if v, _ := c.Get(alias, key); v != "" {
			return v
		}
	}
	return ""
}

// getAll returns every value of key for alias (IdentityFile accumulates).
func (cs *sshConfigs) getAll(alias, key string) []string {
	var all []string
	for _, c := range cs.files {
		v, _ := c.GetAll(alias, key)
		all = append(all, v...)
	}
	return all
}

// resolve applies the ssh config to d: where to connect and as whom, the
// jump hosts, the keys to offer, the known_hosts files and the agent, and
// the timeouts. An error names the setting jepush cannot use.
func (o *SSHOptions) resolve(cs *sshConfigs, d Dest) (*hostConfig, error) {
	h := &hostConfig{Alias: d.Host, HostName: d.Host, User: d.User, Port: d.Port}
	if err := o.resolveAddress(cs, h); err != nil {
		return nil, err
	}
	if err := resolveProxy(cs, h); err != nil {
		return nil, err
	}
	// File names may use %h, %p and %r: the address is known now.
	tokens := o.tokens(h)
	o.resolveIdentities(cs, h, tokens)
	o.resolveKnownHosts(cs, h, tokens)
	o.resolveAgent(cs, h, tokens)
	if err := o.resolveTimeouts(cs, h); err != nil {
		return nil, err
	}
	return h, nil
}

// resolveAddress sets HostName (%h expanded), Port and User. The
// destination's own port and user win over the config's; then come
// port 22 and the local user.
func (o *SSHOptions) resolveAddress(cs *sshConfigs, h *hostConfig) error {
	a := h.Alias
	if v := cs.get(a, "HostName"); v != "" {
		h.HostName = strings.ReplaceAll(strings.ReplaceAll(v, "%h", a), "%%", "%")
	}
	if h.Port == 0 {
		if v := cs.get(a, "Port"); v != "" {
			p, err := strconv.Atoi(v)
			if err != nil || p < 1 || p > 65535 {
				return fmt.Errorf("ssh config: Port %q for %s is not a port number", v, a)
			}
			h.Port = p
		}
	}
	if h.Port == 0 {
		h.Port = 22
	}
	if h.User == "" {
		h.User = cs.get(a, "User")
	}
	if h.User == "" {
		h.User = o.LocalUser
	}
	return nil
}

// resolveProxy sets ProxyJump, and refuses ProxyCommand, which jepush
// does not support.
func resolveProxy(cs *sshConfigs, h *hostConfig) error {
	a := h.Alias
	if v := cs.get(a, "ProxyCommand"); v != "" && !strings.EqualFold(v, "none") {
		return fmt.Errorf("ssh config: %s has ProxyCommand, which jepush does not support: use ProxyJump instead", a)
	}
	if v := cs.get(a, "ProxyJump"); v != "" && !strings.EqualFold(v, "none") {
		for _, j := range strings.Split(v, ",") {
			if j = strings.TrimSpace(j); j != "" {
				h.ProxyJump = append(h.ProxyJump, j)
			}
		}
	}
	return nil
}

// resolveIdentities sets the key files to offer: every IdentityFile of the
// config ("none" offers none), else ~/.ssh/id_ed25519, id_ecdsa and
// id_rsa; and IdentitiesOnly.
func (o *SSHOptions) resolveIdentities(cs *sshConfigs, h *hostConfig, tokens tokens) {
	a := h.Alias
	for _, f := range cs.getAll(a, "IdentityFile") {
		h.ExplicitIdentities = true
		if !strings.EqualFold(f, "none") {
			h.IdentityFiles = append(h.IdentityFiles, tokens.expand(f))
		}
	}
	if !h.ExplicitIdentities {
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			h.IdentityFiles = append(h.IdentityFiles, filepath.Join(o.home(), ".ssh", n))
		}
	}
	h.IdentitiesOnly = strings.EqualFold(cs.get(a, "IdentitiesOnly"), "yes")
}

// resolveKnownHosts sets the known_hosts files (the user's, then the
// global ones), HostKeyAlias, and NotStrict when the config asks for a
// StrictHostKeyChecking jepush does not honour.
func (o *SSHOptions) resolveKnownHosts(cs *sshConfigs, h *hostConfig, tokens tokens) {
	a := h.Alias
	if v := cs.get(a, "UserKnownHostsFile"); v != "" {
		for _, f := range strings.Fields(v) {
			h.KnownHostsFiles = append(h.KnownHostsFiles, tokens.expand(f))
		}
	} else {
		h.KnownHostsFiles = []string{
			filepath.Join(o.home(), ".ssh", "known_hosts"),
			filepath.Join(o.home(), ".ssh", "known_hosts2"),
		}
	}
	if v := cs.get(a, "GlobalKnownHostsFile"); v != "" {
		for _, f := range strings.Fields(v) {
			h.KnownHostsFiles = append(h.KnownHostsFiles, tokens.expand(f))
		}
	} else if o.GlobalKnownHostsFiles != nil {
		h.KnownHostsFiles = append(h.KnownHostsFiles, o.GlobalKnownHostsFiles...)
	} else {
		h.KnownHostsFiles = append(h.KnownHostsFiles, "/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
	}
	h.HostKeyAlias = cs.get(a, "HostKeyAlias")
	switch strings.ToLower(cs.get(a, "StrictHostKeyChecking")) {
	case "no", "off", "accept-new":
		h.NotStrict = true
	}
}

// resolveAgent sets the agent's socket: the config's IdentityAgent ("none":
// no agent), else the options' AgentSocket.
func (o *SSHOptions) resolveAgent(cs *sshConfigs, h *hostConfig, tokens tokens) {
	switch v := cs.get(h.Alias, "IdentityAgent"); {
	case v == "":
		h.AgentSocket = o.AgentSocket
	case strings.EqualFold(v, "none"):
	case v == "SSH_AUTH_SOCK" || v == "$SSH_AUTH_SOCK":
		h.AgentSocket = o.AgentSocket
	default:
		h.AgentSocket = tokens.expand(v)
	}
}

// resolveTimeouts sets ConnectTimeout and the keepalives: the options win,
// then the config's ConnectTimeout, ServerAliveInterval and
// ServerAliveCountMax, then the defaults.
func (o *SSHOptions) resolveTimeouts(cs *sshConfigs, h *hostConfig) error {
	a := h.Alias
	var err error
	if h.ConnectTimeout, err = seconds(o.ConnectTimeout, cs.get(a, "ConnectTimeout"), DefaultConnectTimeout); err != nil {
		return fmt.Errorf("ssh config: ConnectTimeout for %s: %w", a, err)
	}
	if h.KeepaliveInterval, err = seconds(o.KeepaliveInterval, cs.get(a, "ServerAliveInterval"), DefaultKeepaliveInterval); err != nil {
		return fmt.Errorf("ssh config: ServerAliveInterval for %s: %w", a, err)
	}
	h.KeepaliveCountMax = o.KeepaliveCountMax
	if h.KeepaliveCountMax == 0 {
		h.KeepaliveCountMax = DefaultKeepaliveCountMax
		if v := cs.get(a, "ServerAliveCountMax"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("ssh config: ServerAliveCountMax %q for %s is not a positive number", v, a)
			}
			h.KeepaliveCountMax = n
		}
	}
	return nil
}

// seconds picks opt if set, else the config's value in seconds (0 there
// means "the default": jepush never waits forever), else def.
func seconds(opt time.Duration, v string, def time.Duration) (time.Duration, error) {
	if opt > 0 {
		return opt, nil
	}
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a number of seconds", v)
	}
	if n == 0 {
		return def, nil
	}
	return time.Duration(n) * time.Second, nil
}

// tokens expands ~ and the %-tokens OpenSSH allows in file names.
type tokens map[byte]string

func (o *SSHOptions) tokens(h *hostConfig) tokens {
	return tokens{
		'd': o.home(), 'h': h.HostName, 'n': h.Alias, 'p': strconv.Itoa(h.Port),
		'r': h.User, 'u': o.LocalUser, '%': "%",
	}
}

func (t tokens) expand(s string) string {
	if s == "~" || strings.HasPrefix(s, "~/") {
		s = t['d'] + s[1:]
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+1 < len(s) {
			if v, ok := t[s[i+1]]; ok {
				b.WriteString(v)
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// KnownHostsFile is the user's own known_hosts (~/.ssh/known_hosts), where
// jepush records the host keys of the servers it bootstraps.
func (o SSHOptions) KnownHostsFile() string { return filepath.Join(o.home(), ".ssh", "known_hosts") }
