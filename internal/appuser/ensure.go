package appuser

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/jecloud/jecloud/internal/configvars"
)

// Ensure creates the user and group of the app environment whose directory
// is dir (ROOT/APP/ENV) if they are missing (system user, no login, home
// dir/home), and the directories it may write, dir/data and dir/home. dir
// itself becomes root:GROUP 0750, so other apps cannot look inside, and
// the env files holding secrets become readable by that group. It returns
// the user's ids.
func Ensure(app, env, dir string, log io.Writer) (uid, gid int, err error) {
	name := Name(app, env)
	if _, err := user.Lookup(name); err != nil {
		fmt.Fprintf(log, "creating user %s\n", name)
		out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", filepath.Join(dir, "home"), "--shell", "/usr/sbin/nologin",
			"--comment", "JeCloud app "+app+"/"+env, name).CombinedOutput()
		if err != nil {
			return 0, 0, fmt.Errorf("useradd %s: %v: %s", name, err, strings.TrimSpace(string(out)))
		}
	}
	if uid, gid, err = IDs(name); err != nil {
		return 0, 0, err
	}
	for _, f := range []string{configvars.FileName, ServicesEnv} {
		p := filepath.Join(dir, f)
		if _, err := os.Stat(p); err == nil {
			if err := os.Chown(p, 0, gid); err != nil {
				return 0, 0, err
			}
		}
	}
	if err := os.Chown(dir, 0, gid); err != nil {
		return 0, 0, err
	}
	if err := os.Chmod(dir, 0o750); err != nil {
		return 0, 0, err
	}
	for _, d := range []string{"data", "home"} {
		p := filepath.Join(dir, d)
		if err := os.MkdirAll(p, 0o750); err != nil {
			return 0, 0, err
		}
		if err := os.Chown(p, uid, gid); err != nil {
			return 0, 0, err
		}
	}
	return uid, gid, nil
}

// ServicesEnv is the file, beside config.env, where service hooks put the
// variables that hold secrets (REDIS_URL with its password, MONGO_URL):
// an EnvironmentFile of the app's units, 0640 root:GROUP.
const ServicesEnv = "services.env"
