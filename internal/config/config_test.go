package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/remote"
)

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name string
		toml string // jecloud.toml ("" for none)
		pkg  string // package.json ("" for none)
		dir  string // the app directory's name
		app  string
		envs map[string]*Env
		err  []string // all in the error
	}{
		{name: "full", toml: `
app = "shop"

[env.prod]
hosts = ["web1", "deploy@10.0.0.5:2222"]
agent = "sudo -n /opt/jeagent"

[env.dev]
target = "local"
root = "tmp/cloud"

[services]            # issue 4's: not ours, left alone
node = "20"
apt = ["imagemagick"]   # a letter away from app: not taken for a typo
[packages.apt]
list = ["imagemagick"]
`, app: "shop", envs: map[string]*Env{
			"prod": {Name: "prod", Hosts: []string{"web1", "deploy@10.0.0.5:2222"}, Agent: "sudo -n /opt/jeagent"},
			"dev":  {Name: "dev", Local: true, Root: "DIR/tmp/cloud"},
		}},
		{name: "no file, package.json", pkg: `{"name": "@acme/My_Shop", "version": "1.0.0"}`, app: "my-shop", envs: map[string]*Env{}},
		{name: "no file, no package.json", dir: "Web Site.v2", app: "web-site-v2", envs: map[string]*Env{}},
		{name: "no app in the file", toml: "[env.prod]\nhosts = [\"web1\"]\n", pkg: `{"name":"api"}`, app: "api",
			envs: map[string]*Env{"prod": {Name: "prod", Hosts: []string{"web1"}}}},
		{name: "dotted keys", toml: "app = \"x\"\nenv.stage.hosts = [\"s1\"]\n", app: "x",
			envs: map[string]*Env{"stage": {Name: "stage", Hosts: []string{"s1"}}}},

		{name: "ec2", toml: "app = \"shop\"\n[env.test]\ntarget = \"ec2\"\nregion = \"eu-west-1\"\nservers = 2\nssh_from = [\"203.0.113.7/32\"]\n", app: "shop",
			envs: map[string]*Env{"test": {Name: "test", EC2: &EC2{Region: "eu-west-1", Servers: 2, SSHFrom: []string{"203.0.113.7/32"}, Ports: []int32{80, 443}}}}},
		{name: "ec2 without ssh_from", toml: "[env.test]\ntarget = \"ec2\"\n", err: []string{"ssh_from = ["}},
		{name: "ec2 and hosts", toml: "[env.test]\ntarget = \"ec2\"\nssh_from = [\"0.0.0.0/0\"]\nhosts = [\"a\"]\n", err: []string{"both set"}},
		{name: "ec2 bad arch", toml: "[env.test]\ntarget = \"ec2\"\nssh_from = [\"0.0.0.0/0\"]\narch = \"x86\"\n", err: []string{`arch = "x86"`}},
		{name: "syntax error", toml: "app = \"shop\"\n[env.prod\nhosts = []\n", err: []string{"jecloud.toml:3:", "table name"}},
		{name: "typo in an env", toml: "app = \"shop\"\n\n[env.prod]\nhost = [\"web1\"]\n",
			err: []string{"jecloud.toml:4:", `unknown key "host" in [env.prod]`, "hosts, target, root and agent", "ssh_from"}},
		{name: "typo of app", toml: "ap = \"shop\"\n", err: []string{"jecloud.toml:1:", `unknown key "ap": did you mean "app"?`}},
		{name: "App in capitals", toml: "App = \"shop\"\n", err: []string{`did you mean "app"`}},
		{name: "envs", toml: "[envs.prod]\nhosts=[\"a\"]\n", err: []string{`"envs": did you mean "env"`}},
		{name: "bad app", toml: "app = \"My Shop\"\n", err: []string{"jecloud.toml:1:", `invalid app name "My Shop"`}},
		{name: "bad env name", toml: "[env.Prod]\nhosts = [\"a\"]\n", err: []string{"jecloud.toml:1:", `invalid environment name "Prod"`}},
		{name: "hosts not a list", toml: "[env.prod]\nhosts = \"web1\"\n", err: []string{"jecloud.toml:2:", "hosts must be a list"}},
		{name: "app not a string", toml: "app = 3\n", err: []string{"jecloud.toml:1:", `app must be a string, e.g. app = "..."`}},
		{name: "empty hosts", toml: "[env.prod]\nhosts = []\n", err: []string{"[env.prod]", "empty"}},
		{name: "no hosts", toml: "[env.prod]\nagent = \"jeagent\"\n", err: []string{"[env.prod]", "no hosts", `target = "local"`}},
		{name: "bad target", toml: "[env.prod]\ntarget = \"docker\"\n", err: []string{`target = "docker"`}},
		{name: "local and hosts", toml: "[env.prod]\ntarget = \"local\"\nhosts = [\"a\"]\n", err: []string{"both set"}},
		{name: "bad host", toml: "[env.prod]\nhosts = [\"web1; rm -rf /\"]\n", err: []string{"invalid SSH destination"}},
		{name: "env not a table", toml: "env.prod = 3\n", err: []string{"jecloud.toml:1:", "env.prod must be a table"}},
		{name: "hosts per role", toml: "app = \"shop\"\n[roles]\nworker = [\"worker\", \"clock\"]\n[env.prod.hosts]\nweb = [\"web1\", \"web2\"]\nworker = [\"jobs1\"]\n", app: "shop",
			envs: map[string]*Env{"prod": {Name: "prod", Hosts: []string{"jobs1", "web1", "web2"}, HostRoles: map[string]string{"jobs1": "worker"}, Roles: []string{"web", "worker"}}}},
		{name: "hosts per role, inline", toml: "[env.prod]\nhosts = {web = [\"w\"], batch = [\"b1\", \"b2\"]}\n", app: "x",
			dir: "x", envs: map[string]*Env{"prod": {Name: "prod", Hosts: []string{"b1", "b2", "w"}, HostRoles: map[string]string{"b1": "batch", "b2": "batch"}, Roles: []string{"batch", "web"}}}},
		{name: "hosts per role without web", toml: "app = \"shop\"\n[env.prod.hosts]\nworker = [\"jobs1\"]\n",
			err: []string{"jecloud.toml:2:", "[env.prod]", "no web servers (roles worker)", `add web = ["HOST", ...]`}},
		{name: "host in two roles", toml: "app = \"shop\"\n[env.prod.hosts]\nweb = [\"a\"]\nworker = [\"a\"]\n",
			err: []string{"jecloud.toml:2:", `host "a" is in hosts.web and hosts.worker`, "keep it in one list"}},
		{name: "bad role name", toml: "app = \"shop\"\n[env.prod.hosts]\nweb = [\"a\"]\nWorkers = [\"b\"]\n",
			err: []string{"jecloud.toml:2:", `role "Workers"`, "starting with a letter"}},
		{name: "role hosts not a list", toml: "app = \"shop\"\n[env.prod.hosts]\nweb = [\"a\"]\nworker = \"b\"\n",
			err: []string{"hosts.worker must be a list of SSH destinations", `[env.NAME.hosts] with web = ["web1"]`}},
		{name: "roles type twice", toml: "app = \"shop\"\n[roles]\nworker = [\"jobs\"]\nbatch = [\"jobs\"]\n",
			err: []string{"jecloud.toml: [roles]", `"jobs" is in both batch and worker`}},
		{name: "bad package.json", pkg: "{", err: []string{"package.json", `set app = "NAME"`}},
		{name: "unusable dir name", dir: "___", err: []string{`cannot use "___"`, "the directory's name", `set app = "NAME" in`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.dir != "" {
				dir = filepath.Join(dir, tc.dir)
				os.Mkdir(dir, 0o755)
			}
			if tc.toml != "" {
				write(t, dir, FileName, tc.toml)
			}
			if tc.pkg != "" {
				write(t, dir, "package.json", tc.pkg)
			}
			c, err := Load(dir)
			if tc.err != nil {
				if err == nil {
					t.Fatalf("no error; config %+v", c)
				}
				for _, want := range tc.err {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error does not say %q:\n%v", want, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.App != tc.app {
				t.Errorf("app %q, want %q (from %s)", c.App, tc.app, c.AppFrom)
			}
			for _, e := range tc.envs {
				e.Root = strings.Replace(e.Root, "DIR", dir, 1)
			}
			if !reflect.DeepEqual(c.Envs, tc.envs) {
				t.Errorf("envs:\n got %+v\nwant %+v", c.Envs, tc.envs)
			}
		})
	}
}

func TestEnvOverrides(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, FileName, "app = \"shop\"\n[env.prod]\nhosts = [\"web1\", \"web2\"]\nroot = \"/srv/cloud\"\n[env.stage]\nhosts = [\"s1\"]\n[env.roles.hosts]\nweb = [\"web1\"]\nworker = [\"jobs1\"]\n")
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env  string
		o    Overrides
		want []remote.Target
		err  string
	}{
		{env: "prod", want: []remote.Target{{Dest: "web1", Root: "/srv/cloud"}, {Dest: "web2", Root: "/srv/cloud"}}},
		{env: "roles", want: []remote.Target{{Dest: "jobs1", Role: "worker"}, {Dest: "web1"}}},
		{env: "roles", o: Overrides{Hosts: []string{"jobs1"}}, want: []remote.Target{{Dest: "jobs1", Role: "worker"}}},
		{env: "roles", o: Overrides{Hosts: []string{"new1"}}, want: []remote.Target{{Dest: "new1"}}},
		{env: "prod", o: Overrides{Hosts: []string{"web9"}, Agent: "jeagent"}, want: []remote.Target{{Dest: "web9", Root: "/srv/cloud", Agent: "jeagent"}}},
		{env: "prod", o: Overrides{Local: true, LocalRoot: "/tmp/jr"}, want: []remote.Target{{Local: true, Root: "/srv/cloud"}}},
		{env: "stage", o: Overrides{Local: true, LocalRoot: "/tmp/jr"}, want: []remote.Target{{Local: true, Root: "/tmp/jr"}}},
		{env: "new", o: Overrides{Hosts: []string{"n1"}}, want: []remote.Target{{Dest: "n1"}}},
		{env: "new", err: `no environment "new" in ` + filepath.Join(dir, FileName) + " (it has: prod, roles, stage)"},
		{env: "prod", o: Overrides{Hosts: []string{"a"}, Local: true}, err: "choose one"},
		{env: "prod", o: Overrides{Hosts: []string{"-x"}}, err: "--host: invalid SSH destination"},
		{env: "Prod", err: "invalid environment name"},
	} {
		e, err := c.Env(tc.env, tc.o)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Env(%s, %+v) error %v, want %q", tc.env, tc.o, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Env(%s, %+v): %v", tc.env, tc.o, err)
			continue
		}
		if got := e.Targets(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Env(%s, %+v) targets %+v, want %+v", tc.env, tc.o, got, tc.want)
		}
	}

	// Without a config file, --host or --local is enough; nothing says what to do.
	bare := t.TempDir()
	c, err = Load(bare)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Env("prod", Overrides{}); err == nil || !strings.Contains(err.Error(), "no jecloud.toml in") || !strings.Contains(err.Error(), "--host HOST") {
		t.Errorf("no config, no --host: %v", err)
	}
	e, err := c.Env("prod", Overrides{Local: true})
	if err != nil || e.Root != DefaultRoot {
		t.Errorf("--local root: %+v %v", e, err)
	}
}

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"shop": "shop", "@acme/shop": "shop", "My_Shop": "my-shop", "--x--": "x", "café": "caf",
		strings.Repeat("a", 70): strings.Repeat("a", 63), "": "",
	} {
		if got := Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}
