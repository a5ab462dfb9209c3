package node

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

	"github.com/jecloud/jecloud/internal/appuser"
	"github.com/jecloud/jecloud/internal/configvars"
)

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// ensureUser creates the app's user and group (no login, no home
// directory of its own beyond APP/ENV/home) and the directories it may
// write: APP/ENV/data and APP/ENV/home. APP/ENV itself becomes
// root:APPUSER 0750, so other apps cannot look inside.
func ensureUser(a *app, log io.Writer) error {
	if _, err := user.Lookup(a.user); err != nil {
		fmt.Fprintf(log, "creating user %s\n", a.user)
		out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", filepath.Join(a.dir, "home"), "--shell", "/usr/sbin/nologin",
			"--comment", "JeCloud app "+a.name+"/"+a.env, a.user).CombinedOutput()
		if err != nil {
			return fmt.Errorf("useradd %s: %v: %s", a.user, err, strings.TrimSpace(string(out)))
		}
	}
	uid, gid, err := appuser.IDs(a.user)
	if err != nil {
		return err
	}
	// Config vars set before the user existed: give its group read access.
	if cv := filepath.Join(a.dir, configvars.FileName); fileExists(cv) {
		if err := os.Chown(cv, 0, gid); err != nil {
			return err
		}
	}
	if err := os.Chown(a.dir, 0, gid); err != nil {
		return err
	}
	if err := os.Chmod(a.dir, 0o750); err != nil {
		return err
	}
	for _, d := range []string{"data", "home"} {
		p := filepath.Join(a.dir, d)
		if err := os.MkdirAll(p, 0o750); err != nil {
			return err
		}
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// chownTree gives the app's user the release, so that npm (run as that
// user) can write node_modules. At run time the unit's ProtectSystem=strict
// keeps it read-only all the same.
func chownTree(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// asUser makes cmd run as the app's user.
func asUser(cmd *exec.Cmd, uid, gid int) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}},
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
	}
}
