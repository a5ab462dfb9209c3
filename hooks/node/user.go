package node

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

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
