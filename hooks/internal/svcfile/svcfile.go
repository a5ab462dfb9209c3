// Package svcfile holds the small files a service hook keeps in an app
// environment's directory: generated passwords (root-only), generated
// configuration (root:app 0640, rewritten only when it changes) and the
// variables handed to the app in APP/ENV/services.env.
package svcfile

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"

	"github.com/jecloud/jecloud/internal/appuser"
	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/configvars"
)

// Password returns the password kept in path, making a random one (192
// bits, hex) the first time. The file is root-only.
func Password(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	pw := hex.EncodeToString(b[:])
	return pw, atomicfile.WriteFile(path, []byte(pw+"\n"), 0o600)
}

// WriteIfChanged writes a root:gid 0640 file, reporting whether it changed.
func WriteIfChanged(path, content string, gid int) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && string(old) == content {
		return false, nil
	}
	return true, atomicfile.WriteFileOwned(path, []byte(content), 0o640, 0, gid)
}

// SetServiceVar sets one variable of APP/ENV/services.env (dir is APP/ENV).
func SetServiceVar(dir, key, value string, gid int) error {
	path := filepath.Join(dir, appuser.ServicesEnv)
	vars, err := configvars.Read(path)
	if err != nil {
		return err
	}
	if vars[key] == value {
		return nil
	}
	vars[key] = value
	return configvars.Write(path, vars, gid)
}
