// Package names validates the names that become paths on a server: app and
// environment names and bundle version IDs. Nothing that fails here may touch
// the filesystem.
package names

import "fmt"

// The rules are plain loops rather than regular expressions: compiling
// those at start-up was a measurable part of an idle roll-forward tick.

// isName reports whether v matches ^[a-z0-9][a-z0-9-]{0,62}$.
func isName(v string) bool {
	if len(v) == 0 || len(v) > 63 || v[0] == '-' {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isVersion reports whether id matches ^[0-9a-f]{12}$.
func isVersion(id string) bool {
	if len(id) != 12 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// CheckApp returns an error naming the value and the rule if app is not a valid app name.
func CheckApp(app string) error {
	if app == "sys" {
		return fmt.Errorf("invalid app name %q: it is reserved for the agent's own files (/var/cloud/sys); choose another name", app)
	}
	return check("app", app)
}

// CheckEnv returns an error naming the value and the rule if env is not a valid environment name.
func CheckEnv(env string) error { return check("environment", env) }

func check(what, v string) error {
	if isName(v) {
		return nil
	}
	return fmt.Errorf("invalid %s name %q: use 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit", what, v)
}

// CheckVersion returns an error if id is not a version ID (12 lowercase hex digits).
func CheckVersion(id string) error {
	if isVersion(id) {
		return nil
	}
	return fmt.Errorf("invalid version ID %q: a version ID is the 12 lowercase hex digits that `jepush bundle` prints", id)
}
