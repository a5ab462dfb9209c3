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
	"golang.org/x/sys/unix"
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
// user of its own now), everything inside it is given too. That user's
// processes may still be running and changing the tree, so the walk goes
// by directory descriptors (openat with O_NOFOLLOW, fchownat with
// AT_SYMLINK_NOFOLLOW), never by path: a directory swapped for a symbolic
// link on the way is not followed (it is left as it is), and nothing
// outside p is given away.
func Adopt(p string, uid, gid int) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return &os.PathError{Op: "stat", Path: p, Err: err}
	}
	if int(st.Uid) == uid {
		defer unix.Close(fd)
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return &os.PathError{Op: "chown", Path: p, Err: err}
		}
		return nil
	}
	return adoptTree(fd, p, uid, gid)
}

// adoptTree gives the directory open as fd (closed on return), and all in
// it, to uid:gid. name is its path, for errors.
func adoptTree(fd int, name string, uid, gid int) error {
	dir := os.NewFile(uintptr(fd), name)
	defer dir.Close()
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return &os.PathError{Op: "chown", Path: name, Err: err}
	}
	entries, err := dir.ReadDir(-1)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := unix.Fchownat(fd, e.Name(), uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil && err != unix.ENOENT {
			return &os.PathError{Op: "chown", Path: filepath.Join(name, e.Name()), Err: err}
		}
		if !e.IsDir() {
			continue
		}
		sub, err := unix.Openat(fd, e.Name(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ELOOP || err == unix.ENOTDIR || err == unix.ENOENT {
			continue // swapped or removed meanwhile: not followed
		}
		if err != nil {
			return &os.PathError{Op: "open", Path: filepath.Join(name, e.Name()), Err: err}
		}
		if err := adoptTree(sub, filepath.Join(name, e.Name()), uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// ServicesEnv is the file, beside config.env, where service hooks put the
// variables that hold secrets (REDIS_URL with its password, MONGO_URL):
// an EnvironmentFile of the app's units, 0640 root:GROUP.
const ServicesEnv = "services.env"
