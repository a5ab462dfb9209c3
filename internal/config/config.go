// Package config reads an app's jecloud.toml: the app's name and, for each
// environment (prod, stage, ...), where its agents are: SSH hosts or this
// machine. Without a config file the app name comes from package.json or the
// directory's name, and the command line (--host, --local) says where to go.
//
// Other parts of JeCloud add their own tables to the same file ([services],
// packages, ...): keys this package does not own are left alone, but a
// misspelt key in the tables it owns is an error naming file, line and key.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/jecloud/jecloud/internal/appspec"
	"github.com/jecloud/jecloud/internal/names"
	"github.com/jecloud/jecloud/internal/placement"
	"github.com/jecloud/jecloud/internal/remote"
	"github.com/jecloud/jecloud/internal/tomlpos"
)

// FileName is the name of the config file in an app directory.
const FileName = "jecloud.toml"

// Config is an app's deploy configuration.
type Config struct {
	// Dir is the app directory.
	Dir string
	// File is the path of the config file, or "" when the directory has none.
	File string
	// App is the app's name.
	App string
	// AppFrom says where App came from, for messages: the config file,
	// package.json or "the directory's name".
	AppFrom string
	// Envs are the environments of the config file, by name.
	Envs map[string]*Env
	// Roles places process types on server roles ([roles] worker =
	// ["worker"]): which servers run what (internal/placement).
	Roles placement.Map
}

// Env is where one environment of the app is deployed.
type Env struct {
	Name string
	// Hosts are SSH destinations ("web1", "deploy@10.0.0.5:2222"), deployed
	// one after another. Empty when Local.
	Hosts []string
	// HostRoles gives the role of the hosts that are not web servers
	// ([env.NAME.hosts] worker = [...]).
	HostRoles map[string]string
	// Roles are the roles that have hosts in the config file, sorted, when
	// hosts is a table of roles (nil for a list: web only). With --host, the
	// servers pushed to are told these, not only their own.
	Roles []string
	// Local deploys to the agent on this machine, without SSH.
	Local bool
	// Root is the agent's root directory ("" lets the agent choose; for a
	// local target it is resolved to $JECLOUD_ROOT, else /var/cloud).
	Root string
	// Agent is the command that runs jeagent ("" for the default).
	Agent string
	// EC2 is set for target = "ec2": jepush makes the servers (Hosts is
	// then empty: the servers are in the global state on S3).
	EC2 *EC2
}

// EC2 says what servers jepush makes for an environment on EC2.
type EC2 struct {
	Region       string   `toml:"region"`        // "": the AWS configuration's
	Servers      int      `toml:"servers"`       // default 1
	InstanceType string   `toml:"instance_type"` // default t3.small
	Image        string   `toml:"image"`         // default: newest Debian 12
	Arch         string   `toml:"arch"`          // amd64 (default) or arm64
	SSHFrom      []string `toml:"ssh_from"`      // CIDR blocks; required
	Ports        []int32  `toml:"ports"`         // open to all; default [80, 443]
	SSHKey       string   `toml:"ssh_key"`       // public key file; default ~/.ssh/id_ed25519.pub
	AgentBinary  string   `toml:"agent_binary"`  // jeagent for linux/ARCH
	// Deploy is "ssh" (default: the bundle goes to each server over SSH)
	// or "s3" (uploaded once to S3; the servers follow the global state).
	Deploy string `toml:"deploy"`
	// MaxParallel: with deploy = "s3", how many servers switch at a time.
	MaxParallel int `toml:"max_parallel"`
	// BackupBucket and BackupPrefix: the bucket (and prefix, default
	// "jecloud") the servers' backups go to (server.json's backups); the
	// servers' IAM role then gets the rights to this environment's
	// backups there, PREFIX/APP/ENV/..., and no others.
	BackupBucket string `toml:"backup_bucket"`
	BackupPrefix string `toml:"backup_prefix"`
	// ServerS3Endpoint: with deploy = "s3", the S3 endpoint as the servers
	// reach it, when it is not AWS's (an S3-compatible server).
	ServerS3Endpoint string `toml:"server_s3_endpoint"`
	// ElasticIP: the environment's one server has an Elastic IP, which
	// `jepush heal` moves to its replacement (docs/ec2.md#healing).
	ElasticIP bool `toml:"elastic_ip"`
}

// Overrides are the command line's say on where an environment goes.
type Overrides struct {
	Hosts []string // --host, replaces the config's hosts
	Local bool     // --local
	Root  string   // --root
	Agent string   // --agent
	// LocalRoot is $JECLOUD_ROOT: the root of a local target that neither
	// --root nor the config sets ("": DefaultRoot).
	LocalRoot string
}

// DefaultRoot is the agent's root when neither the config nor JECLOUD_ROOT says.
const DefaultRoot = "/var/cloud"

// file is jecloud.toml as decoded; only the keys this package owns.
type file struct {
	App   string              `toml:"app"`
	Env   map[string]envTable `toml:"env"`
	Roles map[string][]string `toml:"roles"`
}

type envTable struct {
	Hosts  hostList `toml:"hosts"`
	Target string   `toml:"target"`
	Root   string   `toml:"root"`
	Agent  string   `toml:"agent"`
	EC2
}

// ownedTop are the top-level keys this package owns; a key a letter away
// from one of them is taken for a typo.
var ownedTop = []string{"app", "env"}

// Load reads dir's config file if there is one and works out the app's name.
func Load(dir string) (*Config, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("app directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("app directory %s is not a directory: pass the directory that holds your app", dir)
	}
	c := &Config{Dir: dir, Envs: map[string]*Env{}}
	path := filepath.Join(dir, FileName)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read config: %w", err)
	default:
		c.File = path
		if err := c.parse(data); err != nil {
			return nil, err
		}
	}
	if c.App == "" {
		if err := c.guessApp(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Config) parse(data []byte) error {
	var f file
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return fmt.Errorf("%s:%d:%d: %s", c.File, pe.Position.Line, pe.Position.Col, pe.Message)
		}
		return c.typeError(err)
	}
	if err := c.checkKeys(data, md.Keys()); err != nil {
		return err
	}
	if c.Roles, err = placement.Parse(c.File, f.Roles, nil); err != nil {
		return err
	}
	if md.IsDefined("app") {
		if err := names.CheckApp(f.App); err != nil {
			return fmt.Errorf("%s:%d: %w", c.File, tomlpos.KeyLine(data, "", "app"), err)
		}
		c.App, c.AppFrom = f.App, c.File
	}
	for name, t := range f.Env {
		line := tomlpos.TableLine(data, "env."+name)
		if err := names.CheckEnv(name); err != nil {
			return fmt.Errorf("%s:%d: [env.%s]: %w", c.File, line, name, err)
		}
		e, err := t.env(name)
		if err != nil {
			if errors.Is(err, errHosts) {
				line = max(line, tomlpos.KeyLine(data, "env."+name, "hosts"), tomlpos.TableLine(data, "env."+name+".hosts"))
			}
			return fmt.Errorf("%s:%d: [env.%s]: %w", c.File, line, name, err)
		}
		if e.Root != "" && !filepath.IsAbs(e.Root) && e.Local {
			e.Root = filepath.Join(c.Dir, e.Root)
		}
		c.Envs[name] = e
	}
	return nil
}

func (t envTable) env(name string) (*Env, error) {
	e := &Env{Name: name, Root: t.Root, Agent: strings.TrimSpace(t.Agent)}
	switch t.Target {
	case "", "ssh":
	case "local":
		e.Local = true
	case "ec2":
		if t.Hosts.set {
			return nil, errors.New(`target = "ec2" and hosts are both set: jepush makes the servers of an EC2 environment; keep one of them`)
		}
		if len(t.SSHFrom) == 0 {
			return nil, errors.New(`target = "ec2" needs ssh_from = ["203.0.113.7/32"]: the addresses (CIDR) SSH is open to, yours at least`)
		}
		if t.Arch != "" && t.Arch != "amd64" && t.Arch != "arm64" {
			return nil, fmt.Errorf("arch = %q: use \"amd64\" or \"arm64\"", t.Arch)
		}
		if t.Servers < 0 || t.Servers > 100 {
			return nil, fmt.Errorf("servers = %d: give 1 to 100", t.Servers)
		}
		if t.Deploy != "" && t.Deploy != "ssh" && t.Deploy != "s3" {
			return nil, fmt.Errorf("deploy = %q: use \"ssh\" (to each server) or \"s3\" (the servers fetch it from the global state)", t.Deploy)
		}
		if t.ElasticIP && t.Servers > 1 {
			return nil, fmt.Errorf("elastic_ip = true and servers = %d: an Elastic IP is for an environment of one server; set servers = 1 or drop elastic_ip", t.Servers)
		}
		if t.MaxParallel < 0 {
			return nil, fmt.Errorf("max_parallel = %d: give 1 or more", t.MaxParallel)
		}
		ec := t.EC2
		if len(ec.Ports) == 0 {
			ec.Ports = []int32{80, 443}
		}
		e.EC2 = &ec
		return e, nil
	default:
		return nil, fmt.Errorf("target = %q: use target = \"local\" for this machine, \"ec2\" for servers jepush makes on EC2, or leave target out and list hosts = [...]", t.Target)
	}
	if e.Local && t.Hosts.set {
		return nil, errors.New(`target = "local" and hosts are both set: keep one of them`)
	}
	if e.Local {
		return e, nil
	}
	if !t.Hosts.set {
		return nil, errors.New(`no hosts: add hosts = ["HOST", ...] (SSH destinations) or target = "local"`)
	}
	if err := t.Hosts.into(e); err != nil {
		return nil, err
	}
	return e, nil
}

// errHosts marks the errors of the hosts key (for the line in messages).
var errHosts = errors.New("hosts")

type hostsError struct {
	msg string
	err error // the cause, if any
}

func (e *hostsError) Error() string        { return e.msg }
func (e *hostsError) Unwrap() error        { return e.err }
func (e *hostsError) Is(target error) bool { return target == errHosts }

// hostList is the hosts key: a list of SSH destinations (the web servers),
// or a table of role -> list ([env.prod.hosts] web = [...], worker = [...]).
type hostList struct {
	set bool
	raw any
}

// UnmarshalTOML keeps the value; into checks it (with the messages of jepush).
func (h *hostList) UnmarshalTOML(v any) error {
	h.set, h.raw = true, v
	return nil
}

const hostsExample = `hosts = ["web1", "web2"], or per role: [env.NAME.hosts] with web = ["web1"] and worker = ["jobs1"]`

// into sets e's hosts (those of the other roles first, by role, then the
// web servers) and their roles.
func (h hostList) into(e *Env) error {
	list := func(key string, v any) ([]string, error) {
		items, ok := v.([]any)
		if !ok {
			return nil, &hostsError{msg: fmt.Sprintf("%s must be a list of SSH destinations: %s", key, hostsExample)}
		}
		var out []string
		for _, it := range items {
			s, ok := it.(string)
			if !ok {
				return nil, &hostsError{msg: fmt.Sprintf("%s: %v is not a string: %s", key, it, hostsExample)}
			}
			if _, err := remote.ParseDest(s); err != nil {
				return nil, &hostsError{msg: fmt.Sprintf("%s: %v", key, err), err: err}
			}
			out = append(out, s)
		}
		return out, nil
	}
	switch v := h.raw.(type) {
	case []any:
		hosts, err := list("hosts", v)
		if err != nil {
			return err
		}
		if len(hosts) == 0 {
			return &hostsError{msg: `hosts = [] is empty: list at least one SSH destination, e.g. hosts = ["web1"]`}
		}
		e.Hosts = hosts
		return nil
	case map[string]any:
		roles := make([]string, 0, len(v))
		for r := range v {
			roles = append(roles, r)
		}
		sort.Strings(roles)
		if _, ok := v[placement.Web]; !ok {
			return &hostsError{msg: fmt.Sprintf("hosts has no web servers (roles %s): add web = [\"HOST\", ...]; process types that no role of [roles] names run there", strings.Join(roles, ", "))}
		}
		seen := map[string]string{}
		var web, others []string
		for _, r := range roles {
			if err := placement.CheckRole(r); err != nil {
				return &hostsError{msg: "hosts: " + err.Error(), err: err}
			}
			hosts, err := list("hosts."+r, v[r])
			if err != nil {
				return err
			}
			for _, d := range hosts {
				if other, ok := seen[d]; ok {
					return &hostsError{msg: fmt.Sprintf("host %q is in hosts.%s and hosts.%s: a server has one role; keep it in one list", d, other, r)}
				}
				seen[d] = r
				if r == placement.Web {
					web = append(web, d)
					continue
				}
				others = append(others, d)
				if e.HostRoles == nil {
					e.HostRoles = map[string]string{}
				}
				e.HostRoles[d] = r
			}
		}
		if len(web) == 0 {
			return &hostsError{msg: `hosts.web = [] is empty: list at least one web server, e.g. web = ["web1"]`}
		}
		// Other roles first: process types moving off the web servers start
		// on their own servers before they stop on the web servers.
		e.Hosts, e.Roles = append(others, web...), roles
		return nil
	}
	return &hostsError{msg: "hosts must be a list of SSH destinations: " + hostsExample}
}

// checkKeys refuses unknown keys in the tables this package owns and
// likely typos of its top-level keys; other keys belong to other parts of
// JeCloud. (The TOML library matches keys to fields without regard to case,
// so every key is checked, not only the undecoded ones.)
func (c *Config) checkKeys(data []byte, keys []toml.Key) error {
	for _, k := range keys {
		switch {
		case len(k) == 0:
		case k[0] != "app" && k[0] != "env":
			for _, own := range ownedTop {
				if nearly(k[0], own) {
					return fmt.Errorf("%s:%d: unknown key %q: did you mean %q?", c.File, tomlpos.KeyLine(data, "", k[0]), k[0], own)
				}
			}
		case len(k) == 3 && k[0] == "env" && !envKeys[k[2]]:
			return fmt.Errorf("%s:%d: unknown key %q in [env.%s]: the keys of an environment are hosts, target, root and agent (and for target = \"ec2\": region, servers, instance_type, image, arch, ssh_from, ports, ssh_key, agent_binary, deploy, max_parallel, server_s3_endpoint, backup_bucket, backup_prefix, elastic_ip)",
				c.File, tomlpos.KeyLine(data, "env."+k[1], k[2]), k[2], k[1])
		}
	}
	return nil
}

// envKeys are the keys of an [env.NAME] table: the one list of
// jecloud.toml's keys is appspec's, which the agent checks too.
var envKeys = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range appspec.EnvKeys {
		m[k] = true
	}
	return m
}()

// typeErrorRE matches the library's errors for a value of the wrong type.
var typeErrorRE = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

func (c *Config) typeError(err error) error {
	m := typeErrorRE.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("%s: %w", c.File, err)
	}
	key, msg := m[2], m[3]
	switch {
	case strings.HasSuffix(key, ".hosts"):
		msg = `hosts must be a list of SSH destinations, e.g. hosts = ["web1", "deploy@10.0.0.5:2222"]`
	case strings.HasPrefix(key, "env.") && strings.Count(key, ".") == 1:
		msg = fmt.Sprintf("%s must be a table: [%s] with hosts = [...] or target = \"local\"", key, key)
	case strings.Contains(msg, "incompatible types") || strings.Contains(msg, "type mismatch"):
		msg = key + " must be a string, e.g. " + key[strings.LastIndexByte(key, '.')+1:] + ` = "..."`
	}
	return fmt.Errorf("%s:%s: %s", c.File, m[1], msg)
}

// nearly reports whether a is b in another case, or b with one letter
// more or less ("ap", "apps", "envs"). A changed letter is not counted, so
// that other parts' keys such as "apt" are not taken for typos.
func nearly(a, b string) bool {
	a, b = strings.ToLower(a), strings.ToLower(b)
	if a == b {
		return true
	}
	if len(a) < len(b) {
		a, b = b, a
	}
	if len(a) != len(b)+1 {
		return false
	}
	for i := range a {
		if a[:i]+a[i+1:] == b {
			return true
		}
	}
	return false
}

// Env returns where environment name goes, the command line's overrides
// applied. It is an error, saying what to do, when nothing says where.
func (c *Config) Env(name string, o Overrides) (*Env, error) {
	if err := names.CheckEnv(name); err != nil {
		return nil, err
	}
	if len(o.Hosts) > 0 && o.Local {
		return nil, errors.New("--host and --local both given: choose one")
	}
	e := &Env{Name: name}
	if ce := c.Envs[name]; ce != nil {
		*e = *ce
		e.Hosts = append([]string(nil), ce.Hosts...)
	}
	switch {
	case o.Local:
		e.HostRoles, e.Roles = nil, nil
	case len(o.Hosts) > 0:
		// --host: a host the file gives a role keeps it; others are web servers.
		roles := map[string]string{}
		for _, h := range o.Hosts {
			if r, ok := e.HostRoles[h]; ok {
				roles[h] = r
			}
		}
		e.HostRoles = roles
		if len(roles) == 0 {
			e.HostRoles = nil
		}
	}
	switch {
	case len(o.Hosts) > 0:
		for _, h := range o.Hosts {
			if _, err := remote.ParseDest(h); err != nil {
				return nil, fmt.Errorf("--host: %w", err)
			}
		}
		e.Hosts, e.Local, e.EC2 = o.Hosts, false, nil
	case o.Local:
		e.Hosts, e.Local, e.EC2 = nil, true, nil
	case c.Envs[name] == nil:
		return nil, c.noEnv(name)
	}
	if o.Root != "" {
		e.Root = o.Root
	}
	if o.Agent != "" {
		e.Agent = o.Agent
	}
	if e.Local && e.Root == "" {
		e.Root = o.LocalRoot
		if e.Root == "" {
			e.Root = DefaultRoot
		}
	}
	return e, nil
}

func (c *Config) noEnv(name string) error {
	if c.File == "" {
		return fmt.Errorf("no %s in %s and no --host: pass --host HOST (or --local), or create %s with\n  app = %q\n  [env.%s]\n  hosts = [\"HOST\"]",
			FileName, c.Dir, filepath.Join(c.Dir, FileName), c.App, name)
	}
	have := make([]string, 0, len(c.Envs))
	for n := range c.Envs {
		have = append(have, n)
	}
	sort.Strings(have)
	list := "none"
	if len(have) > 0 {
		list = strings.Join(have, ", ")
	}
	return fmt.Errorf("no environment %q in %s (it has: %s): add [env.%s] with hosts = [\"HOST\"], or pass --host HOST",
		name, c.File, list, name)
}

// Targets returns the agents to deploy e to, in order.
func (e *Env) Targets() []remote.Target {
	if e.Local {
		return []remote.Target{{Local: true, Root: e.Root, Agent: e.Agent}}
	}
	ts := make([]remote.Target, 0, len(e.Hosts))
	for _, h := range e.Hosts {
		ts = append(ts, remote.Target{Dest: h, Root: e.Root, Agent: e.Agent, Role: e.HostRoles[h]})
	}
	return ts
}
