package rollforward

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/jecloud/jecloud/internal/names"
	"github.com/jecloud/jecloud/internal/state"
)

// observed is what one app environment is, as opposed to what it asks for.
type observed struct {
	ae       state.AppEnv
	app      *state.App
	live     string              // where versions/current points ("" if nowhere)
	releases map[string]*release // by version ID
	temps    []tempEntry         // leftovers of interrupted work in versions/ and the app dir
}

// release is what a version has on disk.
type release struct {
	id          string
	bundle, dir bool
	versions    string // the versions/ directory
	mtime       *time.Time
}

// modTime is the newest of the bundle's and the directory's modification
// times, read the first time it is asked for: an idle tick stats no release.
func (r *release) modTime() time.Time {
	if r.mtime != nil {
		return *r.mtime
	}
	var t time.Time
	for _, p := range []string{r.versions + "/" + r.id + ".tar.zst", r.versions + "/" + r.id} {
		if info, err := os.Lstat(p); err == nil && info.ModTime().After(t) {
			t = info.ModTime()
		}
	}
	r.mtime = &t
	return t
}

type tempEntry struct {
	path    string
	modTime time.Time
	isDir   bool
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

func observe(l state.Layout, ae state.AppEnv) (*observed, error) {
	var app state.App
	if err := state.Read(l.AppJSON(ae), &app); err != nil {
		return nil, err // fs.ErrNotExist: not an app environment (Plan skips it)
	}
	o := &observed{ae: ae, app: &app, releases: map[string]*release{}}
	if target, err := os.Readlink(l.Current(ae)); err == nil {
		o.live = target
	}
	dir := l.Versions(ae)
	entries, err := os.ReadDir(dir)
	if err != nil && !isNotExist(err) {
		return nil, err
	}
	for _, ent := range entries {
		name := ent.Name()
		if strings.HasPrefix(name, ".") {
			info, err := ent.Info()
			if err != nil {
				continue // removed meanwhile
			}
			o.temps = append(o.temps, tempEntry{path: dir + "/" + name, modTime: info.ModTime(), isDir: ent.IsDir()})
			continue
		}
		id, isBundle := strings.CutSuffix(name, ".tar.zst")
		if names.CheckVersion(id) != nil {
			continue // current, or something a person put there
		}
		r := o.releases[id]
		if r == nil {
			r = &release{id: id, versions: dir}
			o.releases[id] = r
		}
		// The type comes with the directory listing: no stat.
		if isBundle {
			r.bundle = ent.Type().IsRegular()
		} else {
			r.dir = ent.IsDir()
		}
	}
	// Temp files of state writes in the app dir.
	if entries, err := os.ReadDir(l.AppDir(ae)); err == nil {
		for _, ent := range entries {
			if n := ent.Name(); strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp-") {
				if info, err := ent.Info(); err == nil {
					o.temps = append(o.temps, tempEntry{path: l.AppDir(ae) + "/" + n, modTime: info.ModTime(), isDir: ent.IsDir()})
				}
			}
		}
	}
	return o, nil
}

// has reports whether version id is on disk, extracted or as a bundle.
func (o *observed) has(id string) (dir, bundle bool) {
	if r := o.releases[id]; r != nil {
		return r.dir, r.bundle
	}
	return false, false
}
