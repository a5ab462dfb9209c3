package bundle

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestWildmatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, text string
		want          bool
	}{
		{"foo", "foo", true},
		{"foo", "bar", false},
		{"???", "foo", true},
		{"??", "foo", false},
		{"*", "foo", true},
		{"f*", "foo", true},
		{"*f", "foo", false},
		{"*foo*", "foo", true},
		{"*ob*a*r*", "foobar", true},
		{"*ab", "aaaaaaabababab", true},
		{"*.log", "debug.log", true},
		{`foo\*`, "foo*", true},
		{`foo\*bar`, "foobar", false},
		{`f\\oo`, `f\oo`, true},
		{`\!x`, "!x", true},
		{`\#x`, "#x", true},
		{`a\`, "a", false},
		{"*[al]?", "ball", true},
		{"[ten]", "ten", false},
		{"**[!te]", "ten", true},
		{"**[!ten]", "ten", false},
		{"t[a-g]n", "ten", true},
		{"t[!a-g]n", "ten", false},
		{"t[!a-g]n", "ton", true},
		{"t[^a-g]n", "ton", true},
		{"a[]]b", "a]b", true},
		{"a[]-]b", "a-b", true},
		{"a[]-]b", "a]b", true},
		{"a[]-]b", "aab", false},
		{"a[]a-]b", "aab", true},
		{"]", "]", true},
		{`[\-_]`, "-", true},
		{`[\]]`, "]", true},
		{`[\\]`, `\`, true},
		{"[[]", "[", true},
		{"[", "[", false},   // unterminated: matches nothing
		{"[a-", "a", false}, // unterminated
		{"[[:digit:]]", "5", true},
		{"[[:digit:]]", "a", false},
		{"[[:alpha:][:digit:]]x", "7x", true},
		{"[![:upper:]]", "a", true},
		{"[![:upper:]]", "A", false},
		{"[[:nope:]]", "n", false}, // unknown class: matches nothing
		{"[[:]x", ":x", true},
		{"foo*bar", "foo/baz/bar", false},
		{"foo**bar", "foo/baz/bar", false},
		{"foo**bar", "foobazbar", true},
		{"x**", "xyz", true},
		{"x**", "x/y", false},
		{"foo/**/bar", "foo/baz/bar", true},
		{"foo/**/bar", "foo/b/a/z/bar", true},
		{"foo/**/bar", "foo/bar", true},
		{"foo/**/**/bar", "foo/bar", true},
		{"foo/**/**/bar", "foo/baz/bar", true},
		{"a/**/b/c", "a/b/x/b/c", true},
		{"foo?bar", "foo/bar", false},
		{"foo[/]bar", "foo/bar", false},
		{"foo[^a-z]bar", "foo/bar", false},
		{"**/foo", "foo", true},
		{"**/foo", "XXX/foo", true},
		{"**/foo", "bar/baz/foo", true},
		{"*/foo", "bar/baz/foo", false},
		{"**/bar*", "foo/bar/baz", false},
		{"**/bar/*", "deep/foo/bar/baz", true},
		{"**/bar/*", "deep/foo/bar", false},
		{"**/bar/**", "deep/foo/bar/baz/x", true},
		{"**/bar**", "foo/bar/baz", false},
		{"*/bar/**", "foo/bar/baz/x", true},
		{"*/bar/**", "deep/foo/bar/baz/x", false},
		{"**/bar/*/*", "deep/foo/bar/baz/x", true},
		{"**", "a/b/c", true},
		{"a/**", "a", false},
		{"a/**", "a/b/c", true},
		{"abc*abd", "abcxabd", true},
		{"-*-*-*-*-*-*-12-*-*-*-m-*-*-*", "-adobe-courier-bold-o-normal--12-120-75-75-m-70-iso8859-1", true},
		{"-*-*-*-*-*-*-12-*-*-*-m-*-*-*", "-adobe-courier-bold-o-normal--12-120-75-75-X-70-iso8859-1", false},
		{"*a*??????a?????????a???????????????", strings.Repeat("a", 60), true},
		{strings.Repeat("*a", 30) + "b", strings.Repeat("a", 60), false}, // must not take exponential time
	} {
		if got := wildmatch(tc.pattern, tc.text); got != tc.want {
			t.Errorf("wildmatch(%q, %q) = %v, want %v", tc.pattern, tc.text, got, tc.want)
		}
	}
}

func TestIgnorePatterns(t *testing.T) {
	for _, tc := range []struct {
		rules string
		path  string
		isDir bool
		want  bool
	}{
		{"*.log", "a.log", false, true},
		{"*.log", "x/y/a.log", false, true},
		{"*.log\n!keep.log", "x/keep.log", false, false},
		{"!keep.log\n*.log", "keep.log", false, true}, // the last matching line wins
		{"/build", "build", true, true},
		{"/build", "src/build", true, false},
		{"build/", "build", false, false}, // a file: "/" means directories only
		{"build/", "src/build", true, true},
		{"doc/frotz/", "doc/frotz", true, true},
		{"doc/frotz/", "a/doc/frotz", true, false},
		{"docs/*.md", "docs/a.md", false, true},
		{"docs/*.md", "docs/x/a.md", false, false},
		{"docs/**/*.md", "docs/x/y/a.md", false, true},
		{"# comment", "# comment", false, false},
		{`\#hash`, "#hash", false, true},
		{`\!bang`, "!bang", false, true},
		{"trail   ", "trail", false, true},
		{`trail\ `, "trail ", false, true},
		{`trail\ `, "trail", false, false},
		{"\xef\xbb\xbfbom", "bom", false, true},
		{"crlf\r\nnext\r\n", "crlf", false, true},
		{"crlf\r\nnext\r\n", "next", false, true},
		{"!", "!", false, false},
		{"a/b/", "a/b", true, true},
		{"*", "anything/at/all", false, true},
	} {
		got := excluded(parseIgnore([]byte(tc.rules), ""), tc.path, tc.isDir)
		if got != tc.want {
			t.Errorf("rules %q: excluded(%q, dir=%v) = %v, want %v", tc.rules, tc.path, tc.isDir, got, tc.want)
		}
	}
}

// ignoreTree is the tree the ignore tests bundle.
var ignoreTree = []string{
	"a.log=", "b.txt=", "keep.log=", "a b=", "trail =", "#hash=", "!bang=", "[x]=", "café=", ".env=", ".env.example=",
	"build/out.js=", "build/keep.txt=", "src/build/x=", "src/a.log=", "src/deep/er/file.md=", "src/x=",
	"docs/a.md=", "docs/sub/b.md=", "docs/sub/c.txt=",
	"node_modules/pkg/index.js=", "sub/node_modules/x.js=", "sub/x.js=", "sub/y.js=", "sub/inner/x.js=",
	"foo/bar=", "bar=", "x/foo=", "abc/def/ghi.txt=", "abc/top.txt=",
	"vendor/lib/a.go=", "vendor/keep/b.go=", "vendor/keep/sub/c.go=",
	".git/config=", "sub/.git=gitdir: elsewhere",
}

// ignoreCases maps ignore files (path -> content) to what they leave out.
var ignoreCases = []struct {
	name  string
	rules map[string]string
}{
	{"none", nil},
	{"comments and blanks", map[string]string{"": "# *\n\n   \n"}},
	{"negation", map[string]string{"": "*.log\n!keep.log\n"}},
	{"anchored", map[string]string{"": "/build\n"}},
	{"dir only, no re-include below", map[string]string{"": "build/\n!build/keep.txt\n"}},
	{"double star", map[string]string{"": "docs/**/*.md\n"}},
	{"double star both ends", map[string]string{"": "**/deep/**\n"}},
	{"dir vs file", map[string]string{"": "foo/\nbar\n"}},
	{"escapes", map[string]string{"": "\\#hash\n\\!bang\n\\[x\\]\na\\ b\ntrail\\ \n"}},
	{"dotfiles", map[string]string{"": ".env*\n!.env.example\n"}},
	{"re-include a dir", map[string]string{"": "vendor/*\n!vendor/keep/\n"}},
	{"only markdown", map[string]string{"": "*\n!*/\n!*.md\n"}},
	{"node_modules back", map[string]string{"": "!node_modules/\n"}},
	{"dir then re-include inside", map[string]string{"": "abc/**\n!abc/def/\n"}},
	{"classes", map[string]string{"": "[[:alpha:]].txt\n?.log\n"}},
	{"all dirs", map[string]string{"": "*/\n"}},
	{"ignore the ignore file", map[string]string{"": ".jepushignore\n.gitignore\n*.js\n"}},
	{"nested", map[string]string{"": "*.md\n", "sub/": "x.js\n!/y.js\n/inner\n", "docs/": "!a.md\nsub/\n"}},
	{"nested negation beats top", map[string]string{"": "*.js\n", "sub/": "!x.js\n"}},
	{"nested in an ignored dir is not read", map[string]string{"": "vendor/\n", "vendor/keep/": "!*\n"}},
	{"mixed 1", map[string]string{"": "src/**/\n*/x.js\n/*.txt\n[!a-c]*.log\n"}},
	{"mixed 2", map[string]string{"": "**/*.js\n!sub/**\n**/er\nd*/\n"}},
	{"mixed 3", map[string]string{"": "docs/*\n!docs/sub\ndocs/sub/*\n!docs/sub/b.md\n"}},
	{"mixed 4", map[string]string{"": "*.*\n!*.go\n**/keep\n", "src/": "**\n!deep/\n!deep/**/\n"}},
}

// setRules writes the ignore files of rules under dir (and the same as
// .gitignore files if gitToo), and returns a function that removes them.
func setRules(t *testing.T, dir string, rules map[string]string, gitToo bool) func() {
	t.Helper()
	names := []string{IgnoreFile}
	if gitToo {
		names = append(names, ".gitignore")
	}
	var written []string
	for at, content := range rules {
		for _, n := range names {
			p := filepath.Join(dir, filepath.FromSlash(at), n)
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			written = append(written, p)
		}
	}
	return func() {
		for _, p := range written {
			os.Remove(p)
		}
	}
}

func TestFilesIgnore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "app")
	mkTree(t, dir, ignoreTree...)
	for _, tc := range []struct {
		name     string
		rules    map[string]string
		in, out  []string
		onlyWant []string // if set, Files must be exactly this
	}{
		{
			name: "defaults",
			in:   []string{"a.log", "b.txt", "sub/", "sub/x.js", "build/keep.txt"},
			out:  []string{".git/", ".git/config", "node_modules/", "node_modules/pkg/index.js", "sub/node_modules/", "sub/.git"},
		},
		{
			name:  "negation",
			rules: map[string]string{"": "*.log\n!keep.log\n"},
			in:    []string{"keep.log", ".jepushignore", "b.txt"},
			out:   []string{"a.log", "src/a.log"},
		},
		{
			name:  "node_modules re-included",
			rules: map[string]string{"": "!node_modules/\n"},
			in:    []string{"node_modules/", "node_modules/pkg/index.js", "sub/node_modules/x.js"},
			out:   []string{".git/"},
		},
		{
			name:  "nested",
			rules: map[string]string{"": "*.md\n", "sub/": "x.js\n!/y.js\n/inner\n", "docs/": "!a.md\n"},
			in:    []string{"sub/y.js", "sub/.jepushignore", "docs/a.md", "docs/.jepushignore"},
			out:   []string{"sub/x.js", "sub/inner/", "docs/sub/b.md", "src/deep/er/file.md"},
		},
		{
			name:  "empty dirs are kept",
			rules: map[string]string{"": "vendor/**\n"},
			in:    []string{"vendor/"},
			out:   []string{"vendor/lib/", "vendor/keep/b.go"},
		},
		{
			name:  "only markdown",
			rules: map[string]string{"": "*\n!*/\n!*.md\n"},
			onlyWant: []string{"abc/", "abc/def/", "build/", "docs/", "docs/a.md", "docs/sub/", "docs/sub/b.md", "foo/",
				"node_modules/", "node_modules/pkg/", "src/", "src/build/", "src/deep/", "src/deep/er/", "src/deep/er/file.md",
				"sub/", "sub/inner/", "sub/node_modules/", "vendor/", "vendor/keep/", "vendor/keep/sub/", "vendor/lib/", "x/"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer setRules(t, dir, tc.rules, false)()
			got, err := Files(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.IsSorted(got) {
				t.Errorf("Files not sorted: %q", got)
			}
			if tc.onlyWant != nil && !slices.Equal(got, tc.onlyWant) {
				t.Errorf("Files = %q\nwant    %q", got, tc.onlyWant)
			}
			for _, p := range tc.in {
				if !slices.Contains(got, p) {
					t.Errorf("%s left out, want it in", p)
				}
			}
			for _, p := range tc.out {
				if slices.Contains(got, p) {
					t.Errorf("%s is in, want it left out", p)
				}
			}
		})
	}
}

// TestIgnoreMatchesGit checks the ignore rules against git itself: with the
// same rules in .gitignore files, and the defaults in .git/info/exclude
// (which, like them, every .gitignore overrides), the files git lists as
// untracked and not ignored are the files of the bundle.
func TestIgnoreMatchesGit(t *testing.T) {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	home := t.TempDir()
	dir := filepath.Join(t.TempDir(), "app")
	mkTree(t, dir, ignoreTree...)
	// Our tree has a .git directory of its own: move it aside for git's.
	// A .git file would make git take sub/ for a submodule.
	if err := os.Rename(filepath.Join(dir, ".git"), filepath.Join(dir, "dotgit")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "sub", ".git"))
	git := func(args ...string) string {
		cmd := exec.Command(gitBin, args...)
		cmd.Dir = dir
		cmd.Env = []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	git("init", "-q")
	git("config", "core.ignorecase", "false")
	if err := os.WriteFile(filepath.Join(dir, ".git", "info", "exclude"), []byte("node_modules/\ndotgit/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	listing := func() (want, got []string) {
		for p := range strings.SplitSeq(git("ls-files", "--others", "--exclude-standard", "-z"), "\x00") {
			if p != "" {
				want = append(want, p)
			}
		}
		slices.Sort(want)
		files, err := Files(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			// git lists no directories; dotgit/ and .git/ are theirs.
			if !strings.HasSuffix(f, "/") && !strings.HasPrefix(f, "dotgit/") {
				got = append(got, f)
			}
		}
		return want, got
	}

	for _, tc := range ignoreCases {
		t.Run(tc.name, func(t *testing.T) {
			defer setRules(t, dir, tc.rules, true)()
			want, got := listing()
			if !slices.Equal(got, want) {
				t.Errorf("rules %q:\nbundle has %q\ngit lists  %q", tc.rules, got, want)
			}
		})
	}
}
