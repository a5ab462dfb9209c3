// Package jecloud holds tests about the module as a whole: every package
// has a doc comment.
package jecloud

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestPackageDocs fails naming each package directory of the module that
// has no package doc comment ("// Package x ..." before the package
// clause of one of its files). A directory with only test files (e2e)
// needs it in one of those.
func TestPackageDocs(t *testing.T) {
	type pkg struct {
		files    bool // it has non-test files
		doc      bool // one of them has the package doc
		testsDoc bool // one of its test files has it
	}
	pkgs := map[string]*pkg{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path == "." {
				return nil
			}
			if name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		p := pkgs[dir]
		if p == nil {
			p = &pkg{}
			pkgs[dir] = p
		}
		documented := f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != ""
		if strings.HasSuffix(name, "_test.go") {
			p.testsDoc = p.testsDoc || documented
		} else {
			p.files = true
			p.doc = p.doc || documented
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for dir, p := range pkgs {
		if !p.doc && (p.files || !p.testsDoc) {
			missing = append(missing, dir)
		}
	}
	sort.Strings(missing)
	for _, dir := range missing {
		t.Errorf("package in %s has no doc comment: add \"// Package NAME ...\" above the package clause of one of its files (doc.go, or the main file)", dir)
	}
	if len(pkgs) < 10 {
		t.Errorf("found only %d package directories: is the test run from the module's root?", len(pkgs))
	}
}
