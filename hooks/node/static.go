package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/jecloud/jecloud/internal/appspec"
	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
)

// serveStatic points the front door at the release's static site
// (spec.Static), or away from the previous release's when this one has
// none. The proxy's user cannot enter the app environment's directory
// (0750, the app's group), and a file server follows symbolic links: so
// the site is copied to routes.StaticDir, world-readable, with its
// regular files and directories only (links, devices and the like are
// left out, and said so). Copies of other versions are removed once the
// proxy has loaded the new root.
func (h *Hook) serveStatic(ctx context.Context, a *app, spec *appspec.Spec, log io.Writer) error {
	l := state.Layout{Root: a.root}
	ae := state.AppEnv{App: a.name, Env: a.env}
	cur, err := routes.ReadUpstreams(l, ae)
	if err != nil {
		return err
	}
	envDir := filepath.Join(routes.StaticDir(l), a.name, a.env)
	if spec.Static == "" {
		if cur.Static != "" {
			cur.Static = ""
			if err := routes.WriteUpstreams(l, ae, cur); err != nil {
				return err
			}
			if routes.Installed(l) && h.Proxy != nil {
				if err := h.apply(ctx, l, log); err != nil {
					return err
				}
			}
		}
		return os.RemoveAll(envDir)
	}
	if !routes.Installed(l) {
		return fmt.Errorf("the release is a static site (%s), and the front door is not installed on this server: `jeagent init` installs it", spec.Static)
	}
	if h.Proxy == nil {
		return errors.New("the release is a static site, and this jeagent has no front door client")
	}
	dst := filepath.Join(envDir, filepath.Base(a.release))
	skipped, files, err := copySite(filepath.Join(a.release, spec.Static), dst, spec.Static == ".")
	if err != nil {
		return fmt.Errorf("copy the static site %s to %s: %w", spec.Static, dst, err)
	}
	if len(skipped) > 0 {
		fmt.Fprintf(log, "static site: left out %d entr(ies) that are not regular files or directories (links are not served): %s\n", len(skipped), first(skipped, 5))
	}
	if err := routes.WriteUpstreams(l, ae, routes.Upstreams{Static: dst}); err != nil {
		return err
	}
	if err := h.apply(ctx, l, log); err != nil {
		routes.WriteUpstreams(l, ae, cur)
		return fmt.Errorf("the front door refused the static site (the live version keeps serving): %w", err)
	}
	fmt.Fprintf(log, "static site: the front door serves %d file(s) of %s\n", files, spec.Static)
	// Old copies: a file being sent stays readable until it is closed.
	entries, _ := os.ReadDir(envDir)
	for _, e := range entries {
		if e.Name() != filepath.Base(dst) {
			os.RemoveAll(filepath.Join(envDir, e.Name()))
		}
	}
	return nil
}

// first lists up to n names.
func first(names []string, n int) string {
	if len(names) <= n {
		return fmt.Sprint(names)
	}
	return fmt.Sprintf("%v and %d more", names[:n], len(names)-n)
}

// copySite copies the regular files and directories under src to dst
// (made afresh: 0755 directories, 0644 files, owned by root), reading src
// through an os.Root with no link followed, so that nothing outside src
// (another file of the server, swapped in by the app's user while the copy
// runs) is copied. top leaves out jecloud.toml and .jecloud at its top (a
// release served as it is). It returns what it left out and how many
// files it copied.
func copySite(src, dst string, top bool) (skipped []string, files int, err error) {
	root, err := os.OpenRoot(src)
	if err != nil {
		return nil, 0, err
	}
	defer root.Close()
	tmp := dst + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return nil, 0, err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, 0, err
	}
	// sys/static/APP/ENV/VERSION: the proxy passes through, whatever the
	// agent's umask.
	for _, d := range []string{filepath.Dir(filepath.Dir(filepath.Dir(dst))), filepath.Dir(filepath.Dir(dst)), filepath.Dir(dst), tmp} {
		if err := os.Chmod(d, 0o755); err != nil {
			return nil, 0, err
		}
	}
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if top && (p == "jecloud.toml" || p == ".jecloud") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		out := filepath.Join(tmp, filepath.FromSlash(p))
		switch {
		case d.IsDir():
			if err := os.Mkdir(out, 0o755); err != nil {
				return err
			}
			return os.Chmod(out, 0o755)
		case d.Type().IsRegular():
			files++
			return copyFile(root, p, out)
		default:
			skipped = append(skipped, p)
			return nil
		}
	})
	if err != nil {
		os.RemoveAll(tmp)
		return nil, 0, err
	}
	os.RemoveAll(dst) // a copy left by an interrupted deploy of this version
	if err := os.Rename(tmp, dst); err != nil {
		return nil, 0, err
	}
	return skipped, files, atomicfile.SyncDir(filepath.Dir(dst))
}

// copyFile copies name of root to out, refusing anything but a regular
// file at the moment it is opened.
func copyFile(root *os.Root, name, out string) error {
	in, err := root.OpenFile(filepath.FromSlash(name), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is no longer a regular file", name)
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, in)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
