// Package appuser names the unprivileged system user each app environment
// runs as, and looks up its ids.
package appuser

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os/user"
	"strconv"
)

// Name is the app environment's user (and group): "jc-APP-ENV", or a hash
// of it when that is longer than Linux's 32 characters.
func Name(app, env string) string {
	n := "jc-" + app + "-" + env
	if len(n) <= 32 {
		return n
	}
	sum := sha256.Sum256([]byte(app + "/" + env))
	return "jc-" + hex.EncodeToString(sum[:])[:16]
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
