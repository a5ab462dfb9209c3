// Package state is the agent's typed view of /var/cloud: where every file
// lives, what server.json and app.json hold, and how they are read and
// written (crash-safely, keeping keys it does not know, never overwriting a
// file that does not parse).
package state

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/jecloud/jecloud/internal/names"
)

// DefaultRoot is where the agent keeps everything on a server.
const DefaultRoot = "/var/cloud"

// Layout names the files under one root.
type Layout struct{ Root string }

// Sys is ROOT/sys: the server's own files, apart from the apps'.
func (l Layout) Sys() string { return filepath.Join(l.Root, "sys") }

// ServerJSON is sys/server.json: server-wide settings and state.
func (l Layout) ServerJSON() string { return filepath.Join(l.Root, "sys", "server.json") }

// PIDDir is sys/pids, which holds PIDFile.
func (l Layout) PIDDir() string { return filepath.Join(l.Root, "sys", "pids") }

// PIDFile is the roll-forward's lock, holding the running one's PID.
func (l Layout) PIDFile() string { return filepath.Join(l.Root, "sys", "pids", "rollforward.pid") }

// LogDir is sys/logs, which holds LogFile.
func (l Layout) LogDir() string { return filepath.Join(l.Root, "sys", "logs") }

// LogFile is sys/logs/rollforward.log: what every roll-forward run did.
func (l Layout) LogFile() string { return filepath.Join(l.Root, "sys", "logs", "rollforward.log") }

// HooksDir is sys/hooks.d: the user's hook executables, run as root.
func (l Layout) HooksDir() string { return filepath.Join(l.Root, "sys", "hooks.d") }

// AppEnv is one app environment: the unit the agent deploys.
type AppEnv struct{ App, Env string }

// String is "APP/ENV".
func (a AppEnv) String() string { return a.App + "/" + a.Env }

// Check validates both names.
func (a AppEnv) Check() error {
	if err := names.CheckApp(a.App); err != nil {
		return err
	}
	return names.CheckEnv(a.Env)
}

// AppDir is ROOT/APP/ENV: everything of one app environment.
func (l Layout) AppDir(a AppEnv) string { return filepath.Join(l.Root, a.App, a.Env) }

// AppJSON is APP/ENV/app.json: what the app environment asks for and what
// was done about it.
func (l Layout) AppJSON(a AppEnv) string { return filepath.Join(l.Root, a.App, a.Env, "app.json") }

// MkdirAppEnv creates the directory of an app environment, dir
// (ROOT/APP/ENV), and the directories under it in sub ("source/versions"),
// 0750 and root's (the agent's) from the start, so that no other user
// looks inside before appuser.Ensure gives dir, source and source/versions
// to the app's group (issue #17). ROOT/APP stays 0755: each of its app
// environments' users must pass through it. Existing directories are
// left as they are.
func MkdirAppEnv(dir string, sub ...string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	for _, s := range sub {
		if err := os.MkdirAll(filepath.Join(dir, s), 0o750); err != nil {
			return err
		}
	}
	return nil
}

// MkdirVersions creates the app environment's source/versions (MkdirAppEnv).
func (l Layout) MkdirVersions(a AppEnv) error {
	return MkdirAppEnv(l.AppDir(a), filepath.Join("source", "versions"))
}

// Versions is APP/ENV/source/versions: the bundles, releases and current.
func (l Layout) Versions(a AppEnv) string {
	return filepath.Join(l.Root, a.App, a.Env, "source", "versions")
}

// Current is the symlink in Versions to the live release.
func (l Layout) Current(a AppEnv) string { return filepath.Join(l.Versions(a), "current") }

// Bundle is version id's bundle as received: versions/ID.tar.zst.
func (l Layout) Bundle(a AppEnv, id string) string {
	return filepath.Join(l.Versions(a), id+".tar.zst")
}

// Release is the directory version id's bundle is extracted to.
func (l Layout) Release(a AppEnv, id string) string { return filepath.Join(l.Versions(a), id) }

// Receipt is where `jeagent receive` records that it checked bundle id.
func (l Layout) Receipt(a AppEnv, id string) string {
	return filepath.Join(l.Versions(a), id+".received.json")
}

// HookVars is where the roll-forward keeps the variables the hooks
// returned while deploying version id (versions/ID.vars.env, an
// EnvironmentFile of the app's units; root's only: they may be secrets).
func (l Layout) HookVars(a AppEnv, id string) string {
	return filepath.Join(l.Versions(a), id+".vars.env")
}

// AppEnvs lists the app environments that have an app.json, sorted. Folders
// whose names are not valid app or environment names are ignored.
func (l Layout) AppEnvs() ([]AppEnv, error) {
	dirs, err := l.EnvDirs()
	out := dirs[:0]
	for _, ae := range dirs {
		if _, err := os.Lstat(l.AppJSON(ae)); err == nil {
			out = append(out, ae)
		}
	}
	return out, err
}

// EnvDirs is AppEnvs without checking that each has an app.json (the
// caller reads it anyway): the folders APP/ENV with valid names, sorted.
func (l Layout) EnvDirs() ([]AppEnv, error) {
	apps, err := os.ReadDir(l.Root)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []AppEnv
	for _, a := range apps {
		if !a.IsDir() || names.CheckApp(a.Name()) != nil {
			continue
		}
		envs, err := os.ReadDir(filepath.Join(l.Root, a.Name()))
		if err != nil {
			return nil, err
		}
		for _, e := range envs {
			if e.IsDir() && names.CheckEnv(e.Name()) == nil {
				out = append(out, AppEnv{a.Name(), e.Name()})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}
