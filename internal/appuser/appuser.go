// Package appuser names the unprivileged system user each app environment
// runs as, and looks up its ids.
package appuser

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"strings"
)

// MaxName is the longest user name systemd takes in User= (it must fit
// utmp's 32 bytes with its terminating NUL).
const MaxName = 31

// Name is the app environment's user (and group): "jc-APP_ENV", or, when
// that is longer than MaxName, "jc-" and the first 28 hex digits of the
// SHA-256 of "APP/ENV". APP and ENV cannot contain '_', so the first form
// names one pair only, and the second has no '_' (and another length than
// LegacyName's hashes), so the two never meet: two app environments never
// share a user (issue #17).
func Name(app, env string) string {
	n := "jc-" + app + "_" + env
	if len(n) <= MaxName {
		return n
	}
	sum := sha256.Sum256([]byte(app + "/" + env))
	return "jc-" + hex.EncodeToString(sum[:])[:MaxName-3]
}

// LegacyName is the user versions before issue #17 created: "jc-APP-ENV"
// (or a hash over 32 characters). (a, b-c) and (a-b, c) got the same one.
func LegacyName(app, env string) string {
	n := "jc-" + app + "-" + env
	if len(n) <= 32 {
		return n
	}
	sum := sha256.Sum256([]byte(app + "/" + env))
	return "jc-" + hex.EncodeToString(sum[:])[:16]
}

// Comment is the comment (GECOS) of the app environment's user: it names
// the one app environment the user belongs to.
func Comment(app, env string) string { return "JeCloud app " + app + "/" + env }

// lookup is user.Lookup; tests replace it.
var lookup = user.Lookup

// Resolve returns the user app/env runs as, existing or to be created:
//   - Name(app, env), refused if such a user exists whose comment is not
//     Comment(app, env): it belongs to someone else (the error names it);
//   - else LegacyName(app, env) if that user exists and its comment names
//     this very app environment: a server deployed before issue #17 keeps
//     its user, files and processes;
//   - else Name(app, env), to be created.
func Resolve(app, env string) (string, error) {
	want := Comment(app, env)
	n := Name(app, env)
	u, err := lookup(n)
	switch {
	case err == nil && u.Name == want:
		return n, nil
	case err == nil:
		return "", fmt.Errorf("user %s, which app %s/%s should run as, already exists and is not its own (%s): remove or rename that user",
			n, app, env, owner(u.Name))
	case !isUnknown(err):
		return "", fmt.Errorf("user %s: %w", n, err)
	}
	old := LegacyName(app, env)
	if u, err := lookup(old); err == nil && u.Name == want {
		return old, nil
	} else if err != nil && !isUnknown(err) {
		return "", fmt.Errorf("user %s: %w", old, err)
	}
	return n, nil
}

// owner says whose a user is, from its comment.
func owner(comment string) string {
	if a, ok := strings.CutPrefix(comment, "JeCloud app "); ok {
		return "it belongs to app " + a
	}
	if comment == "" {
		return "it has no comment"
	}
	return fmt.Sprintf("its comment is %q", comment)
}

func isUnknown(err error) bool {
	var u user.UnknownUserError
	return errors.As(err, &u)
}

// IDs returns the uid and gid of user name.
func IDs(name string) (uid, gid int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, fmt.Errorf("user %s: %w", name, err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, nil
}
