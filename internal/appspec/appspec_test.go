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
		{"unknown service", map[string]string{"jecloud.toml": "[services]\npostgres = \"16\"\n"}, nil, `[services] "postgres"`},
		{"mail", map[string]string{"jecloud.toml": "[services]\nmail = \"\"\n"}, func(t *testing.T, s *Spec) {
			if _, ok := s.Services["mail"]; !ok {
				t.Errorf("services %v", s.Services)
			}
		}, ""},
		{"mail with a version", map[string]string{"jecloud.toml": "[services]\nmail = \"3.7\"\n"}, nil, `[services] mail = "3.7": the mail relay has no version`},
		{"package", map[string]string{"jecloud.toml": "packages = [\"imagemagick; rm -rf /\"]\n"}, nil, "not a Debian package name"},
		// apt-get reads a trailing "-" as "remove this package": an app must
		// not be able to remove openssh-server from its server.
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
			s, err := Read(dir)
			if tc.wantErr != "" {
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
