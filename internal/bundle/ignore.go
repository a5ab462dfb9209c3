package bundle

import (
	"bytes"
	"strings"
)

// IgnoreFile is the name of the files that list what to leave out of a bundle.
const IgnoreFile = ".jepushignore"

// Why a matcher of our own: we looked for a well-kept small library first.
// go-git's plumbing/format/gitignore (v5.19.3, the current release) matches
// elements with filepath.Match and resolves "**" greedily without
// backtracking, so "a/**/b/c" misses "a/b/x/b/c", and "x**" never matches;
// it also brings go-billy, gcfg and x/net into go.mod. The one small
// zero-dependency matcher that follows git's wildmatch closely
// (git-pkgs/gitignore) is not served by our module proxy, and the older ones
// (sabhiram, denormal, monochromegane) are unmaintained regex translations
// with known negation bugs. Git's rules fit in the two files ignore.go and
// wildmatch.go, and TestIgnoreMatchesGit checks them against git itself.

// ignorePattern is one line of an ignore file.
type ignorePattern struct {
	base     string // directory of the ignore file: "" or "dir/sub/"
	glob     string // the pattern, without "!", leading "/" and trailing "/"
	negate   bool   // "!pattern": re-include
	dirOnly  bool   // "pattern/": matches directories only
	basename bool   // no '/' inside: matches the last element at any depth
}

// gitDir is never bundled, whatever the ignore files say: a .git directory,
// or the .git file of a worktree or submodule.
const gitDir = ".git"

// defaultPatterns behave as if they were the first lines of the top
// .jepushignore: later lines there (or in deeper files) override them, so
// "!node_modules/" re-includes node_modules, and so does the "!*/" of the
// "ignore all but" idiom.
func defaultPatterns() []ignorePattern {
	return []ignorePattern{{glob: "node_modules", dirOnly: true, basename: true}}
}

// parseIgnore parses an ignore file found in directory base ("" for the top,
// else "dir/sub/"), with the syntax of .gitignore: blank lines and lines
// starting with '#' are skipped, trailing spaces are dropped unless escaped
// with '\', "!" negates, a trailing "/" matches directories only, a pattern
// with a '/' before its end is relative to base and otherwise matches a name
// at any depth below base.
func parseIgnore(data []byte, base string) []ignorePattern {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	var pats []ignorePattern
	for line := range strings.SplitSeq(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		line = trimTrailingSpaces(line)
		p := ignorePattern{base: base}
		if strings.HasPrefix(line, "!") {
			p.negate = true
			line = line[1:]
		}
		if strings.HasSuffix(line, "/") {
			p.dirOnly = true
			line = line[:len(line)-1]
		}
		p.basename = !strings.Contains(line, "/")
		if !p.basename {
			line = strings.TrimPrefix(line, "/")
		}
		if line == "" {
			continue
		}
		p.glob = line
		pats = append(pats, p)
	}
	return pats
}

// trimTrailingSpaces drops unescaped trailing spaces (not tabs), as git does.
func trimTrailingSpaces(s string) string {
	cut := -1 // start of the run of trailing spaces
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ':
			if cut < 0 {
				cut = i
			}
		case '\\':
			i++
			if i >= len(s) { // a trailing backslash: keep the line as is
				return s
			}
			cut = -1
		default:
			cut = -1
		}
	}
	if cut >= 0 {
		return s[:cut]
	}
	return s
}

// match reports whether the pattern matches rel, a path relative to the
// app directory.
func (p *ignorePattern) match(rel string, isDir bool) bool {
	if p.dirOnly && !isDir {
		return false
	}
	if !strings.HasPrefix(rel, p.base) {
		return false
	}
	rel = rel[len(p.base):]
	if p.basename {
		rel = rel[strings.LastIndexByte(rel, '/')+1:]
	}
	return wildmatch(p.glob, rel)
}

// excluded reports whether rel is left out: the last pattern that matches
// decides, as in git. The caller does not descend into excluded directories,
// so nothing below one can be re-included (git's rule too).
func excluded(pats []ignorePattern, rel string, isDir bool) bool {
	for i := len(pats) - 1; i >= 0; i-- {
		if pats[i].match(rel, isDir) {
			return !pats[i].negate
		}
	}
	return false
}
