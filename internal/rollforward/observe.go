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
	modTime     time.Time // newest of the bundle's and the dir's
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
		return nil, err
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
		info, err := ent.Info()
		if err != nil {
			continue // removed meanwhile
		}
		if strings.HasPrefix(name, ".") {
			o.temps = append(o.temps, tempEntry{path: dir + "/" + name, modTime: info.ModTime(), isDir: ent.IsDir()})
			continue
		}
		id, isBundle := strings.CutSuffix(name, ".tar.zst")
		if names.CheckVersion(id) != nil {
			continue // current, or something a person put there
		}
		r := o.releases[id]
		if r == nil {
			r = &release{id: id}
			o.releases[id] = r
		}
		if isBundle {
			r.bundle = info.Mode().IsRegular()
		} else {
			r.dir = ent.IsDir()
		}
		if info.ModTime().After(r.modTime) {
			r.modTime = info.ModTime()
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
