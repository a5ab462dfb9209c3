package hook

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// trustedPath refuses a hook, or the hooks directory, that anyone but root
// (or the agent's own user) could change or replace: the agent runs hooks
// as root. Every component of the absolute path, from "/" down to path
// itself, is read with lstat and must
//   - not be a symbolic link (a link is followed at exec, after the check);
//   - belong to root or to the agent's own user;
//   - not be writable by group or others. A directory on the way that
//     belongs to root and has the sticky bit (/tmp) is let through: there
//     only an entry's owner may rename or remove it, and the next component
//     is checked for its owner in turn. The last two components (the hooks
//     directory and the hook) never are.
//
// Checked this way, nothing on the path can be swapped between the check
// and the exec by a user who is not root.
func trustedPath(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	parts := strings.Split(strings.TrimPrefix(abs, "/"), "/")
	cur := "/"
	for i := -1; i < len(parts); i++ {
		if i >= 0 {
			cur = filepath.Join(cur, parts[i])
		}
		fi, err := os.Lstat(cur)
		if err != nil {
			return err
		}
		last := i >= len(parts)-2
		if err := trustedComponent(abs, cur, fi, last); err != nil {
			return err
		}
	}
	return nil
}

func trustedComponent(path, cur string, fi fs.FileInfo, last bool) error {
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("hook %s: %s is a symbolic link, which the agent does not follow to a hook it runs as root: "+
			"put the hook (and its directory) there itself, owned by root", path, cur)
	}
	uid, ok := owner(fi)
	if ok && uid != 0 && uid != os.Geteuid() {
		return fmt.Errorf("hook %s belongs to uid %d, who could change what the agent runs as root: run `chown root %s`", cur, uid, cur)
	}
	perm := fi.Mode().Perm()
	if perm&0o022 == 0 {
		return nil
	}
	if !last && fi.IsDir() && fi.Mode()&fs.ModeSticky != 0 && ok && uid == 0 {
		return nil
	}
	return fmt.Errorf("hook %s is writable by group or others (mode %04o) and the agent runs hooks as root: run `chmod go-w %s`", cur, perm, cur)
}
