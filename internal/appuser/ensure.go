package appuser

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/jecloud/jecloud/internal/configvars"
)

// Ensure creates the user and group of the app environment whose directory
// is dir (ROOT/APP/ENV) if they are missing (system user, no login, home
// dir/home; its name is Resolve's), and the directories it may write,
// dir/data and dir/home. dir itself, dir/source and dir/source/versions
// become root:GROUP 0750, so other apps cannot look inside while the app
// reaches its releases, and the env files holding secrets become readable
// by that group. It returns the user's ids.
func Ensure(app, env, dir string, log io.Writer) (uid, gid int, err error) {
	name, err := Resolve(app, env)
	if err != nil {
		return 0, 0, err
	}
	if _, err := user.Lookup(name); err != nil {
		fmt.Fprintf(log, "creating user %s\n", name)
		out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", filepath.Join(dir, "home"), "--shell", "/usr/sbin/nologin",
			"--comment", Comment(app, env), name).CombinedOutput()
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
	for _, p := range []string{dir, filepath.Join(dir, "source"), filepath.Join(dir, "source", "versions")} {
		if err := os.MkdirAll(p, 0o750); err != nil {
			return 0, 0, err
		}
		if err := os.Chown(p, 0, gid); err != nil {
			return 0, 0, err
		}
		if err := os.Chmod(p, 0o750); err != nil {
			return 0, 0, err
		}
	}
	for _, d := range []string{"data", "home"} {
		p := filepath.Join(dir, d)
		if err := os.MkdirAll(p, 0o750); err != nil {
			return 0, 0, err
		}
		if err := Adopt(p, uid, gid); err != nil {
			return 0, 0, err
		}
	}
	return uid, gid, nil
}

// Adopt gives directory p to uid:gid. If p belonged to another user (the
// app environment shared a user with another before issue #17, and has a
// user of its own now), everything inside it is given too.
func Adopt(p string, uid, gid int) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) == uid {
		return os.Chown(p, uid, gid)
	}
	return filepath.WalkDir(p, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

// ServicesEnv is the file, beside config.env, where service hooks put the
// variables that hold secrets (REDIS_URL with its password, MONGO_URL):
// an EnvironmentFile of the app's units, 0640 root:GROUP.
const ServicesEnv = "services.env"
