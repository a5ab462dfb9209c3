package bundle

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// entry is one path that goes into a bundle.
type entry struct {
	name   string // tar name: relative, '/'-separated, directories end in "/"
	kind   kind
	target string // symlink target
}

// Files lists, in bundle order, the paths Write would put in the bundle (for
// `jepush bundle --list` and tests). Directories end in "/".
//
// Everything under dir goes in except what the ignore rules leave out:
//
//   - .git, file or directory, at any depth, always;
//   - node_modules/ directories at any depth, by default;
//   - what .jepushignore files exclude, with the full .gitignore syntax
//     ("!" to re-include, "**", a trailing "/" for directories, a leading
//     "/" to anchor, "#" comments, "\" escapes). A .jepushignore applies to
//     its own directory and below, like a .gitignore; deeper files win over
//     shallower ones, and the last matching line wins. The node_modules/
//     default comes before the lines of the top file, so a negation that
//     matches it ("!node_modules/", or the "!*/" of "*", "!*/", "!*.md")
//     puts node_modules back. Nothing below an excluded directory can be
//     re-included. Matching is case-sensitive on every system, so a tree
//     gives the same bundle on Linux and macOS.
//
// The .jepushignore files themselves go in unless they exclude themselves.
// Empty directories are kept. Symlinks are kept as symlinks: their target
// must be relative and stay inside dir, even through other symlinks.
// Sockets, devices and FIFOs are refused.
func Files(dir string) ([]string, error) {
	ents, err := collect(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.name
	}
	return names, nil
}

// collect walks dir and returns its entries in bundle order.
func collect(dir string) ([]entry, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("bundle: %s is not a directory", dir)
	}
	w := walker{root: dir, pats: defaultPatterns(), links: linkSet{}}
	if err := w.walk(""); err != nil {
		return nil, err
	}
	for _, e := range w.ents {
		if e.kind != kindSymlink {
			continue
		}
		if reason := w.links.escape(e.name); reason != "" {
			return nil, w.linkError(e.name, e.target, reason)
		}
	}
	slices.SortFunc(w.ents, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	return w.ents, nil
}

type walker struct {
	root  string
	pats  []ignorePattern // the defaults, then the patterns of the ignore files above the current directory
	ents  []entry
	links linkSet
}

// walk adds the entries below rel ("" or "dir/sub/").
func (w *walker) walk(rel string) error {
	osDir := filepath.Join(w.root, filepath.FromSlash(rel))
	des, err := os.ReadDir(osDir)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	mark := len(w.pats)
	defer func() { w.pats = w.pats[:mark] }()
	if data, err := os.ReadFile(filepath.Join(osDir, IgnoreFile)); err == nil {
		w.pats = append(w.pats, parseIgnore(data, rel)...)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("bundle: read ignore rules: %w", err)
	}

	for _, de := range des {
		name := rel + de.Name()
		typ := de.Type()
		if de.Name() == gitDir || excluded(w.pats, name, typ.IsDir()) {
			continue
		}
		if len(name) >= maxPathLen {
			return fmt.Errorf("bundle: path %s is longer than %d bytes; shorten it or add it to %s", w.osPath(name), maxPathLen, IgnoreFile)
		}
		switch {
		case typ.IsDir():
			w.ents = append(w.ents, entry{name: name + "/", kind: kindDir})
			if err := w.walk(name + "/"); err != nil {
				return err
			}
		case typ.IsRegular():
			w.ents = append(w.ents, entry{name: name, kind: kindFile})
		case typ&fs.ModeSymlink != 0:
			target, err := os.Readlink(w.osPath(name))
			if err != nil {
				return fmt.Errorf("bundle: %w", err)
			}
			if reason := linkReason(target); reason != "" {
				return w.linkError(name, target, reason)
			}
			w.links[name] = target
			w.ents = append(w.ents, entry{name: name, kind: kindSymlink, target: target})
		default:
			return fmt.Errorf("bundle: %s is a %s; only regular files, directories and symlinks can go in a bundle: remove it or add it to %s",
				w.osPath(name), typeName(typ), IgnoreFile)
		}
	}
	return nil
}

func (w *walker) osPath(rel string) string {
	return filepath.Join(w.root, filepath.FromSlash(rel))
}

func (w *walker) linkError(name, target, reason string) error {
	return fmt.Errorf("bundle: symlink %s -> %s not allowed: %s; links must be relative and stay inside %s: copy the file into the app or add the link to %s",
		w.osPath(name), target, reason, w.root, IgnoreFile)
}

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO (named pipe)"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return "special file (" + m.String() + ")"
}
