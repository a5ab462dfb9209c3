package appspec

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"

	"github.com/jecloud/jecloud/internal/suggest"
	"github.com/jecloud/jecloud/internal/tomlpos"
)

// The keys of jecloud.toml, all tables: jepush (`jepush check`, and every
// push before a byte is sent) and the agent (reading a release) refuse the
// same unknown keys and wrong types with the same messages. A part of
// JeCloud that adds a key adds it here.
var (
	// TopKeys are the top-level keys and tables.
	TopKeys = []string{"app", "env", "grace", "limits", "packages", "roles", "scale", "services", "watchdog", "web"}
	// EnvKeys are the keys of an [env.NAME] table (internal/config).
	EnvKeys = []string{"agent", "hosts", "root", "target",
		"agent_binary", "arch", "deploy", "image", "instance_type", "max_parallel", "ports", "region", "servers", "server_s3_endpoint", "ssh_from", "ssh_key",
		"backup_bucket", "backup_prefix", "elastic_ip"}
	webKeys   = []string{"health", "socket", "static"}
	limitKeys = []string{"cpu_weight", "memory", "tasks"}
	watchKeys = []string{"restarts", "window"}
)

// ReleaseType is the Procfile line of the release command ("release:
// ./migrate"): not a process type but a command run once per deployment
// before the switch; [grace] release is its time limit (a key of [grace],
// checked in readConfig) and [limits.release] its resources.
const ReleaseType = "release"

// checkKeys refuses a key of md that jecloud.toml does not have, naming
// its line and the nearest valid key. Tables whose keys are names (process
// types in [scale], [grace] and [limits], roles in [roles]) are checked
// against the Procfile later.
func checkKeys(path string, data []byte, md toml.MetaData) error {
	for _, k := range md.Keys() {
		if n := len(k); n > 1 && k[n-1] == "packages" {
			table := strings.Join(k[:n-1], ".")
			return fmt.Errorf("%s:%d: packages is inside [%s]: move the packages = [...] line to the top of the file, before any [table]",
				path, tomlpos.KeyLine(data, table, "packages"), table)
		}
		var table string
		var valid []string
		switch {
		case len(k) == 1:
			valid = TopKeys
		case len(k) == 2 && k[0] == "web":
			table, valid = "web", webKeys
		case len(k) == 2 && k[0] == "watchdog":
			table, valid = "watchdog", watchKeys
		case len(k) == 2 && k[0] == "services":
			table, valid = "services", KnownServices
		case len(k) == 3 && k[0] == "env":
			table, valid = "env."+k[1], EnvKeys
		case len(k) == 3 && k[0] == "limits":
			table, valid = "limits."+k[1], limitKeys
		default:
			continue
		}
		key := k[len(k)-1]
		if containsExact(valid, key) {
			continue
		}
		where, line := "at the top level", tomlpos.KeyLine(data, table, key)
		if line == 0 {
			line = tomlpos.TableLine(data, k.String())
		}
		if table != "" {
			where = "in [" + table + "]"
		}
		msg := fmt.Sprintf("%s:%d: unknown key %q %s", path, line, key, where)
		if near := suggest.Nearest(key, valid); near != "" {
			msg += fmt.Sprintf(": did you mean %q?", near)
		}
		msg = fmt.Sprintf("%s (the keys %s are %s)", msg, where, strings.Join(valid, ", "))
		if table == "services" {
			return errors.New(msg) // a service this agent cannot run: never left aside
		}
		return &UnknownKeyError{msg}
	}
	return nil
}

// UnknownKeyError is a key jecloud.toml does not have. jepush check and a
// new release's deployment refuse it (Check); a release already accepted
// (a restart, a rollback) is read without it (Read keeps it in
// Spec.Unknown), so that a stricter agent does not stop what runs.
type UnknownKeyError struct{ msg string }

func (e *UnknownKeyError) Error() string { return e.msg }

func containsExact(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// typeErrorRE matches the TOML library's errors for a value of the wrong type.
var typeErrorRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (?:incompatible types: TOML value has type (\w+)|type mismatch for .*: expected table but found (\w+))`)
})

// wantType says what each key of jecloud.toml takes, for type errors;
// "*" stands for any name.
var wantType = map[string]string{
	"app":                 `a name in quotes, e.g. app = "shop"`,
	"packages":            `a list of Debian package names, e.g. packages = ["libvips42"]`,
	"web":                 "a table: [web] with health = \"/healthz\"",
	"web.health":          `a path in quotes, e.g. health = "/healthz"`,
	"web.socket":          "true or false, e.g. socket = false",
	"web.static":          `a directory of the release in quotes, e.g. static = "public"`,
	"scale":               "a table: [scale] with web = 2",
	"scale.*":             "a whole number of instances, e.g. web = 2",
	"grace":               `a table: [grace] with worker = "10m"`,
	"grace.*":             `a duration in quotes, e.g. worker = "10m"`,
	"services":            `a table: [services] with redis = "7"`,
	"services.*":          `a version in quotes, e.g. redis = "7" ("" for the server's own)`,
	"roles":               `a table: [roles] with worker = ["worker"]`,
	"roles.*":             `a list of process types, e.g. worker = ["worker"]`,
	"limits":              `a table per process type: [limits.web] with memory = "512M"`,
	"limits.*":            `a table: [limits.TYPE] with memory = "512M", tasks = 256, cpu_weight = 100`,
	"limits.*.memory":     `a size in quotes, e.g. memory = "512M" or "25%"`,
	"limits.*.tasks":      "a whole number, e.g. tasks = 256",
	"limits.*.cpu_weight": "a whole number from 1 to 10000, e.g. cpu_weight = 100",
}

// typeError turns the library's error for a value of the wrong type into
// one that names the file, the line, the key and what it takes.
func typeError(path string, err error) error {
	m := typeErrorRE().FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	line, key, got := m[1], m[2], m[3]+m[4]
	parts := strings.Split(key, ".")
	pattern := key
	switch {
	case len(parts) == 2 && parts[0] != "web":
		pattern = parts[0] + ".*"
	case len(parts) == 3 && parts[0] == "limits":
		pattern = "limits.*." + parts[2]
	}
	want, ok := wantType[pattern]
	if !ok {
		return fmt.Errorf("%s:%s: %s has the wrong type (%s)", path, line, key, got)
	}
	return fmt.Errorf("%s:%s: %s is %s: give %s", path, line, key, article(got), want)
}

// article names a TOML library type for people: "a string", "a number".
func article(t string) string {
	switch t {
	case "string":
		return "a string"
	case "int64", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "a list"
	case "map", "table":
		return "a table"
	}
	return t
}
