package bundle

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"time"
)

// A tree's version ID, remembered the way git's index remembers file
// contents: with a fingerprint of every entry's metadata (name, type,
// mode, size, modification time, and where the system has them the
// change time and inode). When the fingerprint is the same the next time,
// the ID is taken from the cache instead of hashing every byte again. A
// file modified within racyWindow of the hash is not trusted (its next
// change could keep the same times): such a tree is hashed every time
// until it settles.

// racyWindow is how long after hashing a file's times must be older than
// the hash for the cache to vouch for it.
var racyWindow = 2 * time.Second

type treeCache struct {
	Fingerprint string `json:"fingerprint"`
	ID          string `json:"id"`
	HashedAt    int64  `json:"hashed_at"` // Unix nanoseconds
}

// CachedHash is Hash with a cache in cacheDir (one small file per tree;
// "" disables it). cached reports whether the ID came from the cache.
func CachedHash(dir, cacheDir string, opt WriteOptions) (id string, cached bool, err error) {
	ents, err := collect(dir)
	if err != nil {
		return "", false, err
	}
	fp, newest, err := fingerprint(dir, ents)
	if err != nil || cacheDir == "" {
		m, err := hashEntries(dir, ents, opt, false)
		if err != nil {
			return "", false, err
		}
		return m.Version, false, nil
	}
	abs, _ := filepath.Abs(dir)
	key := sha256.Sum256([]byte(abs))
	path := filepath.Join(cacheDir, hex.EncodeToString(key[:16])+".json")
	var c treeCache
	if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &c) == nil &&
		c.Fingerprint == fp && newest.Before(time.Unix(0, c.HashedAt).Add(-racyWindow)) && len(c.ID) == IDLen {
		if opt.Progress != nil {
			opt.Progress(0, 0)
		}
		return c.ID, true, nil
	}
	start := time.Now()
	m, err := hashEntries(dir, ents, opt, false)
	if err != nil {
		return "", false, err
	}
	// Remember it only if nothing changed meanwhile: walk and stat again.
	if again, err := collect(dir); err == nil {
		if fp2, _, err := fingerprint(dir, again); err == nil && fp2 == fp {
			if b, err := json.Marshal(treeCache{Fingerprint: fp, ID: m.Version, HashedAt: start.UnixNano()}); err == nil {
				if os.MkdirAll(cacheDir, 0o700) == nil {
					tmp := path + ".tmp"
					if os.WriteFile(tmp, b, 0o600) == nil {
						os.Rename(tmp, path)
					}
				}
			}
		}
	}
	return m.Version, false, nil
}

// fingerprint hashes the metadata of ents and returns the newest of their
// modification and change times.
func fingerprint(dir string, ents []entry) (string, time.Time, error) {
	h := sha256.New()
	var newest time.Time
	var buf [8]byte
	num := func(v int64) {
		binary.LittleEndian.PutUint64(buf[:], uint64(v))
		h.Write(buf[:])
	}
	for _, e := range ents {
		h.Write([]byte(e.name))
		h.Write([]byte{0, byte(e.kind)})
		h.Write([]byte(e.target))
		h.Write([]byte{0})
		if e.kind != kindFile {
			continue
		}
		st, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(e.name)))
		if err != nil {
			return "", newest, err
		}
		num(st.Size())
		num(int64(st.Mode()))
		num(st.ModTime().UnixNano())
		ctime, ino := statExtra(st)
		num(ctime.UnixNano())
		num(int64(ino))
		for _, t := range []time.Time{st.ModTime(), ctime} {
			if t.After(newest) {
				newest = t
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)), newest, nil
}
