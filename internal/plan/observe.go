package plan

import (
	"encoding/json"
	"os"
	"strings"
	"time"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/names"
	"github.com/jecloud/jecloud/internal/state"
)

// Env is what one app environment is, as opposed to what it asks for.
type Env struct {
	AppEnv   state.AppEnv
	App      *state.App
	Live     string              // where versions/current points ("" if nowhere)
	Releases map[string]*Release // by version ID
	temps    []tempEntry         // leftovers of interrupted work in versions/ and the app dir
}

// Has reports whether version id is on disk, extracted or as a bundle.
func (o *Env) Has(id string) (dir, bundle bool) {
	if r := o.Releases[id]; r != nil {
		return r.Dir, r.Bundle
	}
	return false, false
}

// Release is what a version has on disk.
type Release struct {
	ID          string
	Bundle, Dir bool   // versions/ID.tar.zst, versions/ID/
	versions    string // the versions/ directory
	mtime       *time.Time
	size        *int64
}

// Size is what the release holds on disk, about: its bundle's size and,
// when it was extracted, the content its receipt counted. Read the first
// time it is asked for, and only for failed releases (cleanup's caps).
func (r *Release) Size() int64 {
	if r.size != nil {
		return *r.size
	}
	var n int64
	if info, err := os.Lstat(r.versions + "/" + r.ID + ".tar.zst"); err == nil {
		n += info.Size()
	}
	if r.Dir {
		if b, err := os.ReadFile(r.versions + "/" + r.ID + ".received.json"); err == nil {
			var rc state.Receipt
			if json.Unmarshal(b, &rc) == nil {
				n += rc.ContentBytes
			}
		}
	}
	r.size = &n
	return n
}

// ModTime is the newest of the bundle's and the directory's modification
// times, read the first time it is asked for: an idle tick stats no release.
func (r *Release) ModTime() time.Time {
	if r.mtime != nil {
		return *r.mtime
	}
	var t time.Time
	for _, p := range []string{r.versions + "/" + r.ID + ".tar.zst", r.versions + "/" + r.ID} {
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
}

func observe(l state.Layout, ae state.AppEnv) (*Env, error) {
	var app state.App
	if err := state.Read(l.AppJSON(ae), &app); err != nil {
		return nil, err // fs.ErrNotExist: not an app environment (Make skips it)
	}
	o := &Env{AppEnv: ae, App: &app, Releases: map[string]*Release{}}
	if target, err := os.Readlink(l.Current(ae)); err == nil {
		o.Live = target
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
			o.temps = append(o.temps, tempEntry{path: dir + "/" + name, modTime: info.ModTime()})
			continue
		}
		id, isBundle := strings.CutSuffix(name, ".tar.zst")
		if names.CheckVersion(id) != nil {
			continue // current, or something a person put there
		}
		r := o.Releases[id]
		if r == nil {
			r = &Release{ID: id, versions: dir}
			o.Releases[id] = r
		}
		// The type comes with the directory listing: no stat.
		if isBundle {
			r.Bundle = ent.Type().IsRegular()
		} else {
			r.Dir = ent.IsDir()
		}
	}
	// Temp files of state writes in the app dir.
	if entries, err := os.ReadDir(l.AppDir(ae)); err == nil {
		for _, ent := range entries {
			if n := ent.Name(); atomicfile.IsTemp(n) {
				if info, err := ent.Info(); err == nil {
					o.temps = append(o.temps, tempEntry{path: l.AppDir(ae) + "/" + n, modTime: info.ModTime()})
				}
			}
		}
	}
	return o, nil
}
