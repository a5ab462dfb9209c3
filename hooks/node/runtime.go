package node

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/jecloud/jecloud/internal/atomicfile"
)

// DefaultMirror is where Node.js releases come from unless server.json says
// otherwise (a URL of a mirror, or a local directory laid out the same way:
// index.json, vX.Y.Z/SHASUMS256.txt, vX.Y.Z/node-vX.Y.Z-linux-ARCH.tar.gz).
const DefaultMirror = "https://nodejs.org/dist"

// Runtimes installs exact Node.js versions side by side under Dir, each
// once, from official release tarballs checked against SHASUMS256.txt.
type Runtimes struct {
	Dir    string
	Mirror string
	Client *http.Client
}

// Bin returns the bin directory of an installed version.
func (r *Runtimes) Bin(version string) string { return filepath.Join(r.Dir, version, "bin") }

// Installed reports whether version is installed.
func (r *Runtimes) Installed(version string) bool {
	_, err := os.Stat(filepath.Join(r.Bin(version), "node"))
	return err == nil
}

func arch() string {
	if runtime.GOARCH == "amd64" {
		return "x64"
	}
	return runtime.GOARCH
}

// Resolve turns engines.node (an exact version, or an npm-style range such
// as "20.x", "^20.11", ">=18 <21") into an exact version: the newest release
// of the mirror that matches (a range and no mirror: the newest installed
// one). An empty constraint means the newest LTS release.
func (r *Runtimes) Resolve(ctx context.Context, constraint string) (string, error) {
	c := strings.TrimPrefix(strings.TrimSpace(constraint), "v")
	if v, err := semver.StrictNewVersion(c); err == nil {
		return v.String(), nil
	}
	var rng *semver.Constraints
	if c != "" {
		var err error
		if rng, err = semver.NewConstraint(c); err != nil {
			return "", fmt.Errorf("engines.node %q is neither a version nor a range (%v): write e.g. \"20.11.1\" or \"20.x\"", constraint, err)
		}
	}
	releases, err := r.index(ctx)
	if err != nil {
		// No mirror: an installed version that matches will do.
		if v := r.newestInstalled(rng); v != "" {
			return v, nil
		}
		return "", err
	}
	for _, rel := range releases {
		v, err := semver.NewVersion(strings.TrimPrefix(rel.Version, "v"))
		if err != nil {
			continue
		}
		if rng == nil && !rel.LTS() || rng != nil && !rng.Check(v) {
			continue
		}
		return v.String(), nil // index.json lists the newest first
	}
	return "", fmt.Errorf("no Node.js release on %s matches engines.node %q", r.mirror(), constraint)
}

type release struct {
	Version string          `json:"version"`
	LTSName json.RawMessage `json:"lts"` // false, or the LTS's name
}

func (r release) LTS() bool { return len(r.LTSName) > 0 && string(r.LTSName) != "false" }

func (r *Runtimes) newestInstalled(rng *semver.Constraints) string {
	entries, _ := os.ReadDir(r.Dir)
	var vs []*semver.Version
	for _, e := range entries {
		if v, err := semver.StrictNewVersion(e.Name()); err == nil && r.Installed(e.Name()) && (rng == nil || rng.Check(v)) {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return ""
	}
	sort.Sort(semver.Collection(vs))
	return vs[len(vs)-1].String()
}

func (r *Runtimes) mirror() string {
	if r.Mirror == "" {
		return DefaultMirror
	}
	return strings.TrimSuffix(r.Mirror, "/")
}

func (r *Runtimes) index(ctx context.Context) ([]release, error) {
	rc, err := r.open(ctx, "index.json")
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var releases []release
	if err := json.NewDecoder(rc).Decode(&releases); err != nil {
		return nil, fmt.Errorf("%s/index.json: %w", r.mirror(), err)
	}
	return releases, nil
}

// open reads a file of the mirror, by URL or from a local directory.
func (r *Runtimes) open(ctx context.Context, name string) (io.ReadCloser, error) {
	m := r.mirror()
	if !strings.HasPrefix(m, "http://") && !strings.HasPrefix(m, "https://") {
		return os.Open(filepath.Join(strings.TrimPrefix(m, "file://"), filepath.FromSlash(name)))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m+"/"+name, nil)
	if err != nil {
		return nil, err
	}
	client := r.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Minute}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s/%s: %w (set \"node\": {\"mirror\": ...} in server.json to use a mirror or a local directory)", m, name, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("fetch %s/%s: %s", m, name, resp.Status)
	}
	return resp.Body, nil
}

// Install installs version (exact) unless it is there, and returns its bin dir.
func (r *Runtimes) Install(ctx context.Context, version string, log io.Writer) (string, error) {
	if r.Installed(version) {
		return r.Bin(version), nil
	}
	tarball := fmt.Sprintf("node-v%s-linux-%s.tar.gz", version, arch())
	want, err := r.checksum(ctx, version, tarball)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(log, "installing Node.js %s from %s\n", version, r.mirror())
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(r.Dir, "."+version+".install-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it 0700: apps run this Node.js
		return "", err
	}
	rc, err := r.open(ctx, "v"+version+"/"+tarball)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := sha256.New()
	if err := untar(io.TeeReader(rc, h), tmp); err != nil {
		return "", fmt.Errorf("unpack %s: %w", tarball, err)
	}
	io.Copy(h, rc) // whatever gzip left unread still counts
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return "", fmt.Errorf("%s has SHA-256 %s but SHASUMS256.txt says %s: the download is corrupt or the mirror is wrong", tarball, got, want)
	}
	if _, err := os.Stat(filepath.Join(tmp, "bin", "node")); err != nil {
		return "", fmt.Errorf("%s holds no bin/node", tarball)
	}
	if err := os.Rename(tmp, filepath.Join(r.Dir, version)); err != nil {
		return "", err
	}
	if err := atomicfile.SyncDir(r.Dir); err != nil {
		return "", err
	}
	return r.Bin(version), nil
}

func (r *Runtimes) checksum(ctx context.Context, version, tarball string) (string, error) {
	rc, err := r.open(ctx, "v"+version+"/SHASUMS256.txt")
	if err != nil {
		return "", err
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[1] == tarball {
			return f[0], nil
		}
	}
	return "", fmt.Errorf("SHASUMS256.txt of Node.js %s on %s lists no %s: is %s a Node.js version?", version, r.mirror(), tarball, version)
}

// untar unpacks a gzipped release tarball into dir, dropping the top folder.
func untar(r io.Reader, dir string) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		_, name, ok := strings.Cut(strings.TrimPrefix(h.Name, "./"), "/")
		name = strings.TrimSuffix(name, "/")
		if !ok || name == "" {
			continue
		}
		if !filepath.IsLocal(name) {
			return fmt.Errorf("unsafe path %q", h.Name)
		}
		mode := os.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := root.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				return err
			}
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode|0o444)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if filepath.IsAbs(h.Linkname) || !filepath.IsLocal(filepath.Join(filepath.Dir(name), h.Linkname)) {
				return fmt.Errorf("unsafe link %q -> %q", h.Name, h.Linkname)
			}
			if err := root.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				return err
			}
			if err := root.Symlink(h.Linkname, name); err != nil {
				return err
			}
		}
	}
}
