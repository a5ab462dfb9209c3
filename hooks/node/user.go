package node

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// userName is the app environment's own system user: "jc-APP-ENV", or a
// hash of it when that is longer than Linux's 32 characters.
func userName(app, env string) string {
	n := "jc-" + app + "-" + env
	if len(n) <= 32 {
		return n
	}
	sum := sha256.Sum256([]byte(app + "/" + env))
	return "jc-" + hex.EncodeToString(sum[:])[:16]
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
	uid, gid, err := ids(a.user)
	if err != nil {
		return err
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

func ids(name string) (uid, gid int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, fmt.Errorf("user %s: %w", name, err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, nil
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
