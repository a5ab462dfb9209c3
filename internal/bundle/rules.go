package bundle

import (
	"archive/tar"
	"bytes"
	"path"
	"strings"
)

const (
	// maxPathLen caps entry names and symlink targets (PATH_MAX on Linux).
	maxPathLen = 4096
	// maxElemLen caps one element of a name (NAME_MAX on Linux and macOS).
	maxElemLen = 255
	// maxLinkHops caps the symlinks followed while resolving one path (Linux
	// gives up after 40).
	maxLinkHops = 40
)

// kind is the type of a path in a bundle.
type kind uint8

const (
	kindNone kind = iota
	kindDir
	kindFile
	kindSymlink
)

// entryName checks the name of a tar entry and returns the '/'-separated
// relative path it creates, or "" for the top directory itself ("./" as
// written by `tar -C dir -cf - .`). One or more leading "./" and the
// trailing "/" of a directory are normalised; every other form that path.Clean
// would change ("a//b", "a/./b", "a/") is refused, as are absolute paths and
// ".." components.
func entryName(h *tar.Header) (string, error) {
	name := h.Name
	switch {
	case name == "":
		return "", unsafeEntry(h.Name, "empty name")
	case strings.HasPrefix(name, "/"):
		return "", unsafeEntry(h.Name, "absolute path")
	case len(name) > maxPathLen:
		return "", unsafeEntry(h.Name[:64]+"...", "name longer than %d bytes", maxPathLen)
	}
	for elem := range strings.SplitSeq(name, "/") {
		switch {
		case elem == "..":
			return "", unsafeEntry(h.Name, `path contains a ".." element`)
		case len(elem) > maxElemLen:
			return "", unsafeEntry(h.Name, "path element longer than %d bytes", maxElemLen)
		}
	}
	for strings.HasPrefix(name, "./") {
		name = name[2:]
	}
	if h.Typeflag == tar.TypeDir {
		name = strings.TrimSuffix(name, "/")
	}
	if name == "" || name == "." {
		if h.Typeflag != tar.TypeDir {
			return "", unsafeEntry(h.Name, "only a directory may name the top of the bundle")
		}
		return "", nil
	}
	if path.Clean(name) != name {
		return "", unsafeEntry(h.Name, "path is not in canonical form (empty or \".\" elements, or a trailing slash)")
	}
	return name, nil
}

// linkReason checks a symlink target on its own: it must be relative, and
// not empty or longer than maxPathLen. It returns "" when the target is fine.
func linkReason(target string) string {
	switch {
	case target == "":
		return "the target is empty"
	case strings.HasPrefix(target, "/"):
		return "the target is absolute"
	case len(target) > maxPathLen:
		return "the target is longer than 4096 bytes"
	}
	return ""
}

// linkSet maps the relative path of every symlink of a tree to its target.
type linkSet map[string]string

// escape follows the symlink name the way the kernel would, through the
// other symlinks of the set, and returns why it may leave the top
// directory, or "" if it cannot. Paths that are not in the set are taken
// lexically: a ".." after a missing element or a regular file goes up one
// level, which is stricter than the kernel (it would fail there).
func (ls linkSet) escape(name string) string {
	var cur []byte // the resolved directory so far, relative, no trailing slash
	if dir := path.Dir(name); dir != "." {
		cur = append(cur, dir...)
	}
	rest := ls[name]
	for hops := 1; rest != ""; {
		var elem string
		elem, rest, _ = strings.Cut(rest, "/")
		switch elem {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return "it leads outside the top directory"
			}
			cur = cur[:max(bytes.LastIndexByte(cur, '/'), 0)]
			continue
		}
		mark := len(cur)
		if mark > 0 {
			cur = append(cur, '/')
		}
		cur = append(cur, elem...)
		target, isLink := ls[string(cur)]
		if !isLink {
			continue
		}
		if hops++; hops > maxLinkHops {
			return "it goes through too many symlinks"
		}
		if r := linkReason(target); r != "" {
			return "it goes through symlink " + string(cur) + " whose target is not allowed (" + r + ")"
		}
		cur = cur[:mark]
		if rest != "" {
			rest = target + "/" + rest
		} else {
			rest = target
		}
	}
	return ""
}
