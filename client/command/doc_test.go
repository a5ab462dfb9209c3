package command

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocListsEveryCommand: docs/jepush.md's table of commands has a row
// for every command of jepush, with an example that runs it, and names
// no command jepush does not have.
func TestDocListsEveryCommand(t *testing.T) {
	b, err := os.ReadFile("../../docs/jepush.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "| command | example |")
	if start < 0 {
		t.Fatal("docs/jepush.md has no table of commands (| command | example |)")
	}
	table := doc[start:]
	table = table[:strings.Index(table, "\n\n")]
	rows := map[string]string{}
	row := regexp.MustCompile("(?m)^\\| `([^`]+)`[^|]*\\| (.*) \\|$")
	for _, m := range row.FindAllStringSubmatch(table, -1) {
		rows[m[1]] = m[2]
	}
	names := map[string]bool{}
	for _, c := range App().Commands {
		if c.Name == "help" {
			continue
		}
		names[c.Name] = true
		ex, ok := rows[c.Name]
		if !ok {
			t.Errorf("docs/jepush.md's table of commands has no row for %q", c.Name)
			continue
		}
		want := "`jepush " + c.Name + " "
		if c.Name == "push" {
			want = "`jepush "
		}
		if !strings.Contains(ex, want) {
			t.Errorf("the example of %q in docs/jepush.md (%s) does not run it (%s...)", c.Name, ex, want)
		}
	}
	for name := range rows {
		if !names[name] && !strings.HasPrefix(name, "--") {
			t.Errorf("docs/jepush.md's table of commands lists %q, which jepush does not have", name)
		}
	}
}
