package appspec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]string
		check   func(t *testing.T, s *Spec)
		wantErr string
	}{
		{"node default web", map[string]string{"package.json": `{"name":"shop","engines":{"node":"20.x"},"scripts":{"start":"node s.js"}}`, "package-lock.json": "{}"},
			func(t *testing.T, s *Spec) {
				if s.Node.Engine != "20.x" || !s.Node.HasLock || s.Processes["web"] != "npm start" || s.Instances("web") != 1 {
					t.Errorf("%+v %+v", s.Node, s.Processes)
				}
			}, ""},
		{"procfile and config", map[string]string{
			"package.json": `{"name":"shop"}`,
			"Procfile":     "# comment\nweb: node server.js\nworker:  node worker.js --queue=a:b\n",
			"jecloud.toml": "app = \"shop\"\n[env.prod]\nhosts=[\"x\"]\n[web]\nhealth = \"/healthz\"\n[scale]\nworker = 3\n",
		}, func(t *testing.T, s *Spec) {
			if s.Processes["worker"] != "node worker.js --queue=a:b" || s.Instances("worker") != 3 || s.Web.Health != "/healthz" {
				t.Errorf("%+v", s)
			}
			if got := strings.Join(s.ProcessNames(), ","); got != "web,worker" {
				t.Errorf("names %s", got)
			}
		}, ""},
		{"no app", map[string]string{}, func(t *testing.T, s *Spec) {
			if s.Node != nil || len(s.Processes) != 0 {
				t.Errorf("%+v", s)
			}
		}, ""},
		{"bad procfile line", map[string]string{"Procfile": "web node x\n"}, nil, "Procfile:1: \"web node x\" is not"},
		{"bad type", map[string]string{"Procfile": "Web: x\n"}, nil, `process type "Web"`},
		{"twice", map[string]string{"Procfile": "web: a\nweb: b\n"}, nil, "declared twice"},
		{"engine not string", map[string]string{"package.json": `{"engines":{"node":20}}`}, nil, "engines.node is 20"},
		{"bad json", map[string]string{"package.json": `{`}, nil, "package.json"},
		{"scale unknown", map[string]string{"Procfile": "web: a\n", "jecloud.toml": "[scale]\nclock = 1\n"}, nil, `[scale] names "clock"`},
		{"grace", map[string]string{"Procfile": "web: a\nworker: b\n", "jecloud.toml": "[grace]\nworker = \"10m\"\n"}, func(t *testing.T, s *Spec) {
			if s.GraceOf("worker") != 10*time.Minute || s.GraceOf("web") != DefaultGrace {
				t.Errorf("grace: worker %s, web %s", s.GraceOf("worker"), s.GraceOf("web"))
			}
		}, ""},
		{"grace unknown type", map[string]string{"Procfile": "web: a\n", "jecloud.toml": "[grace]\nclock = \"1m\"\n"}, nil, `[grace] names "clock"`},
		{"grace not a duration", map[string]string{"Procfile": "worker: b\n", "jecloud.toml": "[grace]\nworker = \"ten minutes\"\n"}, nil, `[grace] worker = "ten minutes": give a duration from "1s" to "20m0s"`},
		{"grace too long", map[string]string{"Procfile": "worker: b\n", "jecloud.toml": "[grace]\nworker = \"2h\"\n"}, nil, `[grace] worker = "2h"`},
		{"release command", map[string]string{"Procfile": "web: a\nrelease: ./migrate --all\n"}, func(t *testing.T, s *Spec) {
			if s.Release != "./migrate --all" || s.ReleaseTimeout() != DefaultReleaseTimeout {
				t.Errorf("release %q, timeout %s", s.Release, s.ReleaseTimeout())
			}
			if _, ok := s.Processes["release"]; ok || strings.Join(s.ProcessNames(), ",") != "web" {
				t.Errorf("the release command must never be a process type: %v", s.ProcessNames())
			}
		}, ""},
		{"release only, with package.json", map[string]string{"package.json": `{"name":"a"}`, "Procfile": "release: npm run migrate\n"}, func(t *testing.T, s *Spec) {
			if s.Release != "npm run migrate" || s.Processes["web"] != "npm start" {
				t.Errorf("release %q, processes %v", s.Release, s.Processes)
			}
		}, ""},
		{"release timeout", map[string]string{"Procfile": "web: a\nrelease: m\n", "jecloud.toml": "[grace]\nrelease = \"2h\"\n\n[limits.release]\nmemory = \"1G\"\n"}, func(t *testing.T, s *Spec) {
			if s.ReleaseTimeout() != 2*time.Hour || s.LimitsOf("release").Memory != "1G" {
				t.Errorf("timeout %s, limits %+v", s.ReleaseTimeout(), s.LimitsOf("release"))
			}
		}, ""},
		{"release timeout too long", map[string]string{"Procfile": "release: m\n", "jecloud.toml": "[grace]\nrelease = \"25h\"\n"}, nil,
			`[grace] release = "25h": give the release command's time limit as a duration from "1s" to "24h0m0s", e.g. "45m" (default 30m0s)`},
		{"release timeout without a release command", map[string]string{"Procfile": "web: a\n", "jecloud.toml": "[grace]\nrelease = \"1m\"\n"}, nil,
			`[grace] release is the release command's time limit, but the Procfile has no "release:" line`},
		{"release scaled", map[string]string{"Procfile": "web: a\nrelease: m\n", "jecloud.toml": "[scale]\nrelease = 2\n"}, nil,
			`[scale] release: the release command runs once per deployment`},
		{"watchdog defaults", map[string]string{"Procfile": "web: a\n"}, func(t *testing.T, s *Spec) {
			if s.Watchdog != (Watchdog{Window: 10 * time.Minute, Restarts: 3}) {
				t.Errorf("watchdog %+v", s.Watchdog)
			}
		}, ""},
		{"watchdog set", map[string]string{"Procfile": "web: a\n", "jecloud.toml": "[watchdog]\nwindow = \"0s\"\nrestarts = 0\n"}, func(t *testing.T, s *Spec) {
			if s.Watchdog != (Watchdog{}) {
				t.Errorf("watchdog %+v", s.Watchdog)
			}
		}, ""},
		{"watchdog window not a duration", map[string]string{"Procfile": "web: a\n", "jecloud.toml": "[watchdog]\nwindow = \"10\"\n"}, nil, `[watchdog] window = "10": give a duration from "0s" (off) to "24h0m0s"`},
		{"watchdog restarts negative", map[string]string{"Procfile": "web: a\n", "jecloud.toml": "[watchdog]\nrestarts = -1\n"}, nil, `[watchdog] restarts = -1: give 0`},
		{"watchdog unknown key", map[string]string{"Procfile": "web: a\n", "jecloud.toml": "[watchdog]\nrestart = 2\n"}, nil, `unknown key "restart" in [watchdog]: did you mean "restarts"?`},
		{"roles", map[string]string{"Procfile": "web: a\nworker: b\nclock: c\n", "jecloud.toml": "[roles]\nworker = [\"worker\", \"clock\"]\n"}, func(t *testing.T, s *Spec) {
			if s.Roles.RoleOf("clock") != "worker" || s.Roles.RoleOf("web") != "web" {
				t.Errorf("roles %v", s.Roles)
			}
		}, ""},
		{"roles unknown type", map[string]string{"Procfile": "web: a\n", "jecloud.toml": "[roles]\nworker = [\"worker\"]\n"}, nil,
			`jecloud.toml: [roles] worker names "worker", which is not a process type of the Procfile (web)`},
		{"health", map[string]string{"Procfile": "web: a\n", "jecloud.toml": "[web]\nhealth = \"healthz\"\n"}, nil, `health = "healthz"`},
		{"services", map[string]string{"jecloud.toml": "[services]\nredis = \"7\"\nmongodb = \"\"\n"}, func(t *testing.T, s *Spec) {
			if v, ok := s.Services["redis"]; !ok || v != "7" || len(s.Services) != 2 {
				t.Errorf("services %v", s.Services)
			}
		}, ""},
		{"unknown service", map[string]string{"jecloud.toml": "[services]\npostgres = \"16\"\n"}, nil, `jecloud.toml:2: unknown key "postgres" in [services] (the keys in [services] are mail, mongodb, redis)`},
		{"misspelt service", map[string]string{"jecloud.toml": "[services]\nrediss = \"7\"\n"}, nil, `jecloud.toml:2: unknown key "rediss" in [services]: did you mean "redis"?`},
		// #20: a misspelt key used to pass without a word, a type error in
		// [scale] to be uploaded and blamed on the packages hook.
		{"misspelt web key", map[string]string{"Procfile": "web: a\n", "jecloud.toml": "app = \"shop\"\n\n[web]\nhelth = \"/healthz\"\n"}, nil,
			`jecloud.toml:4: unknown key "helth" in [web]: did you mean "health"? (the keys in [web] are health, socket, static)`},
		{"key in another case", map[string]string{"Procfile": "web: a\n", "jecloud.toml": "[web]\nHealth = \"/healthz\"\n"}, nil,
			`jecloud.toml:2: unknown key "Health" in [web]: did you mean "health"?`},
		{"misspelt table", map[string]string{"Procfile": "web: a\n", "jecloud.toml": "[scales]\nweb = 2\n"}, nil,
			`jecloud.toml:1: unknown key "scales" at the top level: did you mean "scale"?`},
		{"unknown top key, nothing near", map[string]string{"jecloud.toml": "region = \"eu\"\n"}, nil,
			`jecloud.toml:1: unknown key "region" at the top level (the keys at the top level are app, env,`},
		{"misspelt env key", map[string]string{"jecloud.toml": "[env.prod]\nhost = [\"web1\"]\n"}, nil,
			`jecloud.toml:2: unknown key "host" in [env.prod]: did you mean "hosts"?`},
		{"misspelt limit", map[string]string{"Procfile": "web: a\n", "jecloud.toml": "[limits.web]\nmemroy = \"1G\"\n"}, nil,
			`jecloud.toml:2: unknown key "memroy" in [limits.web]: did you mean "memory"?`},
		{"scale of the wrong type", map[string]string{"Procfile": "web: a\n", "jecloud.toml": "\n[scale]\nweb = \"2\"\n"}, nil,
			`jecloud.toml:3: scale.web is a string: give a whole number of instances, e.g. web = 2`},
		{"socket of the wrong type", map[string]string{"Procfile": "web: a\n", "jecloud.toml": "[web]\nsocket = \"no\"\n"}, nil,
			`jecloud.toml:2: web.socket is a string: give true or false`},
		{"packages of the wrong type", map[string]string{"jecloud.toml": "packages = \"libvips42\"\n"}, nil,
			`jecloud.toml:1: packages is a string: give a list of Debian package names`},
		{"web not a table", map[string]string{"jecloud.toml": "web = \"/\"\n"}, nil,
			`jecloud.toml:1: web is a string: give a table: [web]`},
		{"syntax error", map[string]string{"jecloud.toml": "[web\nhealth = 1\n"}, nil, `jecloud.toml:2:5: expected '.' or ']' to end table name`},
		{"engines.node not a range", map[string]string{"package.json": `{"engines": {"node": "twenty"}}`}, nil,
			`package.json: engines.node "twenty" is neither a version nor a range`},
		{"engines.node a range", map[string]string{"package.json": `{"engines": {"node": ">=18 <21"}}`}, func(t *testing.T, s *Spec) {
			if s.Node.Engine != ">=18 <21" {
				t.Errorf("engine %q", s.Node.Engine)
			}
		}, ""},
		{"engines.node no version satisfies", map[string]string{"package.json": `{"engines": {"node": ">=22 <20"}}`}, nil,
			`engines.node ">=22 <20": no version satisfies it`},
		{"mail", map[string]string{"jecloud.toml": "[services]\nmail = \"\"\n"}, func(t *testing.T, s *Spec) {
			if _, ok := s.Services["mail"]; !ok {
				t.Errorf("services %v", s.Services)
			}
		}, ""},
		{"mail with a version", map[string]string{"jecloud.toml": "[services]\nmail = \"3.7\"\n"}, nil, `[services] mail = "3.7": the mail relay has no version`},
		{"package", map[string]string{"jecloud.toml": "packages = [\"imagemagick; rm -rf /\"]\n"}, nil, "not a Debian package name"},
		// apt-get reads a trailing "-" as "remove this package": an app must
		// not be able to remove openssh-server from its server.
		// A service's version reaches apt-get's command line
		// (mongodb-org-server=VERSION): numbers and dots only.
		{"service version with a space", map[string]string{"jecloud.toml": "[services]\nmongodb = \"7.0 openssh-server-\"\n"}, nil, `[services] mongodb = "7.0 openssh-server-": give a version such as "7", "7.0" or "7.0.x"`},
		{"service version as an option", map[string]string{"jecloud.toml": "[services]\nredis = \"-oAPT::Get::Purge=1\"\n"}, nil, `[services] redis = "-oAPT::Get::Purge=1"`},
		{"service version with a release", map[string]string{"jecloud.toml": "[services]\nmongodb = \"7.0/bookworm\"\n"}, nil, `give a version such as`},
		{"service versions", map[string]string{"jecloud.toml": "[services]\nmongodb = \"7.0.x\"\nredis = \"7.0.15\"\nmail = \"\"\n"}, func(t *testing.T, s *Spec) {
			if s.Services["mongodb"] != "7.0.x" || s.Services["redis"] != "7.0.15" {
				t.Errorf("services %v", s.Services)
			}
		}, ""},
		{"package removal", map[string]string{"jecloud.toml": "packages = [\"openssh-server-\"]\n"}, nil, `"openssh-server-" is not a Debian package name`},
		{"package option", map[string]string{"jecloud.toml": "packages = [\"-oAPT::Get::Purge=true\"]\n"}, nil, "not a Debian package name"},
		{"package one letter", map[string]string{"jecloud.toml": "packages = [\"a\"]\n"}, nil, "not a Debian package name"},
		{"packages", map[string]string{"jecloud.toml": "app = \"shop\"\npackages = [\"imagemagick\", \"libvips42\"]\n[web]\nhealth = \"/\"\n"},
			func(t *testing.T, s *Spec) {
				if strings.Join(s.Packages, ",") != "imagemagick,libvips42" {
					t.Errorf("packages %q", s.Packages)
				}
			}, ""},
		{"packages in a table", map[string]string{"jecloud.toml": "[web]\nhealth = \"/\"\npackages = [\"imagemagick\"]\n"}, nil,
			"packages is inside [web]: move the packages = [...] line to the top"},
		{"packages in an env", map[string]string{"jecloud.toml": "[env.prod]\nhosts = [\"x\"]\npackages = [\"imagemagick\"]\n"}, nil,
			"packages is inside [env.prod]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, tc.files)
			s, err := Check(dir)
			if tc.wantErr != "" {
				// Read leaves an unknown key aside (a release that ran
				// before runs again); Check refuses it.
				if lenient, rerr := Read(dir); strings.Contains(tc.wantErr, "unknown key") && !strings.Contains(tc.wantErr, "[services]") &&
					(rerr != nil || lenient.Unknown == nil || !strings.Contains(lenient.Unknown.Error(), tc.wantErr)) {
					t.Errorf("Read: %v, Unknown %v: want the unknown key left aside", rerr, lenient)
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		cmd, assigns, exec, program, args, compound, err string
	}{
		{cmd: "node server.js", exec: "node server.js", program: "node", args: "server.js"},
		{cmd: "  node ./bin/www  ", exec: "node ./bin/www", program: "node", args: "./bin/www"},
		{cmd: "NODE_ENV=production PORT_X='a b' node app.js", assigns: "NODE_ENV=production PORT_X='a b'", exec: "node app.js", program: "node", args: "app.js"},
		{cmd: "exec node s.js", exec: "node s.js", program: "node", args: "s.js"},
		{cmd: `"./node_modules/.bin/next" start -p "$PORT"`, exec: `"./node_modules/.bin/next" start -p "$PORT"`, program: "./node_modules/.bin/next", args: "start|-p|$PORT"},
		{cmd: `node -e 'a; b && c | d' x\ y`, exec: `node -e 'a; b && c | d' x\ y`, program: "node", args: "-e|a; b && c | d|x y"},
		{cmd: "node s.js # comment; rm", exec: "node s.js # comment; rm", program: "node", args: "s.js"},
		{cmd: "npm run build && node s.js", exec: "npm run build && node s.js", program: "npm", args: "run|build", compound: "&&"},
		{cmd: "node a.js; node b.js", program: "node", exec: "node a.js; node b.js", args: "a.js", compound: ";"},
		{cmd: "node s.js > log", program: "node", exec: "node s.js > log", args: "s.js", compound: ">"},
		{cmd: "node s.js\nnode t.js", program: "node", exec: "node s.js\nnode t.js", args: "s.js", compound: "a newline"},
		{cmd: "node $(cat main)", program: "node", exec: "node $(cat main)", compound: "$("},
		{cmd: "node \"`cat main`\"", program: "node", exec: "node \"`cat main`\"", compound: "`"},
		{cmd: "if true; then node s.js; fi", program: "if", exec: "if true; then node s.js; fi", args: "true", compound: ";"},
		{cmd: "{ node s.js }", program: "{", exec: "{ node s.js }", args: "node|s.js|}", compound: "{"},
		{cmd: "FOO=1", assigns: "FOO=1"},
		{cmd: "node 'server.js", err: "(') is not closed"},
		{cmd: `node "server.js`, err: `(") is not closed`},
		{cmd: "node s.js\r", err: `control character '\r'`},
		{cmd: "node s.js\x00; rm -rf /", err: `control character '\x00'`},
	} {
		c, err := ParseCommand(tc.cmd)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseCommand(%q) = %+v, %v; want error %q", tc.cmd, c, err, tc.err)
			}
			continue
		}
		if err != nil || c.Assigns != tc.assigns || c.Exec != tc.exec || c.Program != tc.program ||
			strings.Join(c.Args, "|") != tc.args || c.Compound != tc.compound {
			t.Errorf("ParseCommand(%q) = %+v, %v;\nwant assigns %q exec %q program %q args %q compound %q",
				tc.cmd, c, err, tc.assigns, tc.exec, tc.program, tc.args, tc.compound)
		}
	}
	for cmd, want := range map[string]string{
		"node s.js":              "exec node s.js",
		"exec node s.js":         "exec node s.js",
		"A=1 B='x y' node s.js":  "A=1 B='x y' exec node s.js",
		"A=1 exec node s.js":     "A=1 exec node s.js",
		"node a.js && node b.js": "exec node a.js && node b.js",
		"FOO=1":                  "FOO=1",
	} {
		c, _ := ParseCommand(cmd)
		if got := c.ExecLine(); got != want {
			t.Errorf("ExecLine(%q) = %q, want %q", cmd, got, want)
		}
	}
}

// TestWebCommand: with socket activation ([web] socket = true; the cases
// without a jecloud.toml get it), `npm start` (the default without a
// Procfile) runs the start script itself, or is refused, before the switch,
// with the file and the fix. Without it (the default, behind the proxy)
// the command runs as written.
func TestWebCommand(t *testing.T) {
	pkg := func(scripts string) string { return `{"name":"shop","scripts":{` + scripts + `}}` }
	for _, tc := range []struct {
		name    string
		files   map[string]string
		want    string
		wantErr []string
	}{
		{"node server.js", map[string]string{"package.json": pkg(`"start":"node server.js"`)}, "node server.js", nil},
		{"node ./bin/www", map[string]string{"package.json": pkg(`"start":"node ./bin/www"`)}, "node ./bin/www", nil},
		{"node options", map[string]string{"package.json": pkg(`"start":"node --max-old-space-size=512 app.js"`)}, "node --max-old-space-size=512 app.js", nil},
		{"variables first", map[string]string{"package.json": pkg(`"start":"NODE_OPTIONS=--enable-source-maps node dist/main.js"`)}, "NODE_OPTIONS=--enable-source-maps node dist/main.js", nil},
		{"a .bin program", map[string]string{"package.json": pkg(`"start":"next start"`)}, "next start", nil},
		{"npm run start in a Procfile", map[string]string{"package.json": pkg(`"start":"node s.js"`), "Procfile": "web:  npm   run start\n"}, "node s.js", nil},
		{"yarn start in a Procfile", map[string]string{"package.json": pkg(`"start":"node s.js"`), "Procfile": "web: yarn start\n"}, "node s.js", nil},
		{"poststart is not run", map[string]string{"package.json": pkg(`"start":"node s.js","poststart":"echo bye"`)}, "node s.js", nil},
		{"no start script, server.js", map[string]string{"package.json": pkg(``), "server.js": "//"}, "node server.js", nil},
		{"no start script, no server.js", map[string]string{"package.json": pkg(``)}, "",
			[]string{"package.json has no start script, and the release no server.js", `"start": "node FILE"`, "web: node FILE"}},
		{"npm run serve", map[string]string{"package.json": pkg(`"start":"npm run serve","serve":"node s.js"`)}, "",
			[]string{`package.json: scripts.start "npm run serve" runs the app through npm`, "(fd 3)", `"start": "node server.js"`, "[web] socket = true"}},
		{"cross-env", map[string]string{"package.json": pkg(`"start":"cross-env NODE_ENV=production node s.js"`)}, "",
			[]string{"through cross-env", "write the variables before the command instead"}},
		{"pm2-runtime", map[string]string{"package.json": pkg(`"start":"./node_modules/.bin/pm2-runtime s.js"`)}, "",
			[]string{"through pm2-runtime", "systemd already restarts the app"}},
		{"node --watch", map[string]string{"package.json": pkg(`"start":"node --watch s.js"`)}, "", []string{"through node --watch"}},
		{"prestart", map[string]string{"package.json": pkg(`"prestart":"node migrate.js","start":"node s.js"`)}, "",
			[]string{`package.json: scripts.prestart "node migrate.js" would not run`, "not through npm", "remove prestart", "[web] socket = true"}},
		{"compound", map[string]string{"package.json": pkg(`"start":"node migrate.js && node s.js"`)}, "",
			[]string{`scripts.start "node migrate.js && node s.js" is more than one command (it has &&)`, "web: node FILE", "[web] socket = true"}},
		{"hostile newline", map[string]string{"package.json": pkg(`"start":"node s.js\nExecStartPre=+/bin/sh -c 'id > /root/pwned'"`)}, "",
			[]string{"more than one command (it has a newline)"}},
		{"hostile control character", map[string]string{"package.json": pkg(`"start":"node s.js\r\u0000"`)}, "", []string{`control character '\r'`}},
		{"unterminated quote", map[string]string{"package.json": pkg(`"start":"node 's.js"`)}, "", []string{"(') is not closed"}},
		{"Procfile through npm", map[string]string{"package.json": pkg(`"serve":"node s.js"`), "Procfile": "web: npm run serve\n"}, "",
			[]string{`Procfile: web: "npm run serve" runs the app through npm`, "web: node FILE", "[web] socket = true"}},
		{"Procfile node", map[string]string{"package.json": pkg(``), "Procfile": "web: node s.js\nworker: npm run work\n"}, "node s.js", nil},
		{"Procfile shell wrapper", map[string]string{"package.json": pkg(``), "Procfile": "web: ./start.sh\n"}, "./start.sh", nil},
		// [web] socket = false, or no key (the default): the app binds $PORT, npm may stay in between.
		{"default: npm start", map[string]string{"package.json": pkg(`"prestart":"node m.js","start":"npm run serve"`), "jecloud.toml": "[web]\nhealth = \"/\"\n"}, "npm start", nil},
		{"no socket: npm start", map[string]string{"package.json": pkg(`"prestart":"node m.js","start":"npm run serve"`), "jecloud.toml": "[web]\nsocket = false\n"}, "npm start", nil},
		{"no socket: Procfile", map[string]string{"package.json": pkg(``), "Procfile": "web: pm2-runtime s.js\n", "jecloud.toml": "[web]\nsocket = false\n"}, "pm2-runtime s.js", nil},
		{"no socket, no start script", map[string]string{"package.json": pkg(``), "jecloud.toml": "[web]\nsocket = false\n"}, "", []string{"no start script"}},
		{"no web", map[string]string{"package.json": pkg(``), "Procfile": "worker: npm run work\n"}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, ok := tc.files["jecloud.toml"]; !ok {
				tc.files["jecloud.toml"] = "[web]\nsocket = true\n"
			}
			write(t, dir, tc.files)
			s, err := Read(dir)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.WebCommand()
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("WebCommand() = %q, want an error", got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q:\n%v", w, err)
					}
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("WebCommand() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestNodeEngine(t *testing.T) {
	for _, tc := range []struct {
		in      string
		exact   string
		wantErr string
	}{
		{"", "", ""},
		{"20.11.1", "20.11.1", ""},
		{"v20.11.1", "20.11.1", ""},
		{"20.x", "", ""},
		{"^20.11", "", ""},
		{">=18 <21", "", ""},
		{"<0.1", "", ""},
		{"18 || 20", "", ""},
		{">1.2.3 <1.2.5", "", ""},
		{"twenty", "", "is neither a version nor a range"},
		{">=22 <20", "", "no version satisfies it"},
		{"<0.0.0", "", "no version satisfies it"},
	} {
		exact, _, err := NodeEngine(tc.in)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("NodeEngine(%q) err = %v, want %q", tc.in, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("NodeEngine(%q): %v", tc.in, err)
		case tc.exact != "" && (exact == nil || exact.String() != tc.exact):
			t.Errorf("NodeEngine(%q) = %v, want %s", tc.in, exact, tc.exact)
		}
	}
}

// TestStaticAndRuns: what a release without a Procfile or a package.json
// runs: a static site (index.html, or [web] static = "DIR") or nothing.
func TestStaticAndRuns(t *testing.T) {
	for _, tc := range []struct {
		name       string
		files      map[string]string
		dirs       []string
		link       string // a symbolic link "public" to this target
		wantStatic string
		wantRuns   bool
		wantErr    string
	}{
		{"nothing", map[string]string{"README": "hi"}, nil, "", "", false, ""},
		{"index.html", map[string]string{"index.html": "<h1>hi</h1>"}, nil, "", ".", true, ""},
		{"procfile wins over index.html", map[string]string{"index.html": "x", "Procfile": "web: python3 -m http.server $PORT\n"}, nil, "", "", true, ""},
		{"package.json wins over index.html", map[string]string{"index.html": "x", "package.json": "{}"}, nil, "", "", true, ""},
		{"only a release phase", map[string]string{"Procfile": "release: ./migrate\n"}, nil, "", "", false, ""},
		{"a worker", map[string]string{"Procfile": "worker: ./work\n"}, nil, "", "", true, ""},
		{"static dir", map[string]string{"jecloud.toml": "[web]\nstatic = \"public/\"\n"}, []string{"public"}, "", "public", true, ""},
		{"static dir and a worker", map[string]string{"Procfile": "worker: ./w\n", "jecloud.toml": "[web]\nstatic = \"public\"\n"}, []string{"public"}, "", "public", true, ""},
		{"static dir missing", map[string]string{"jecloud.toml": "[web]\nstatic = \"public\"\n"}, nil, "", "", false,
			`jecloud.toml: [web] static = "public": the release has no directory public`},
		{"static dir a link", map[string]string{"jecloud.toml": "[web]\nstatic = \"public\"\n"}, []string{"site"}, "site", "", false,
			`the release has no directory public (a symbolic link does not count)`},
		{"static dir outside", map[string]string{"jecloud.toml": "[web]\nstatic = \"../other\"\n"}, nil, "", "", false,
			`[web] static = "../other": give a directory inside the release`},
		{"static dir absolute", map[string]string{"jecloud.toml": "[web]\nstatic = \"/etc\"\n"}, nil, "", "", false,
			`[web] static = "/etc": give a directory inside the release`},
		{"static and a web process", map[string]string{"Procfile": "web: ./serve\n", "jecloud.toml": "[web]\nstatic = \"public\"\n"}, []string{"public"}, "", "", false,
			`the front door serves one or the other`},
		{"static of the wrong type", map[string]string{"jecloud.toml": "[web]\nstatic = true\n"}, nil, "", "", false,
			`jecloud.toml:2: web.static is true or false: give a directory of the release in quotes`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range tc.dirs {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if tc.link != "" {
				if err := os.Symlink(tc.link, filepath.Join(dir, "public")); err != nil {
					t.Fatal(err)
				}
			}
			write(t, dir, tc.files)
			s, err := Check(dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Static != tc.wantStatic || s.Runs() != tc.wantRuns {
				t.Errorf("static %q runs %v, want %q %v", s.Static, s.Runs(), tc.wantStatic, tc.wantRuns)
			}
		})
	}
}
