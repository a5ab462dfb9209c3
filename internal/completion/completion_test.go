package completion

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestScript(t *testing.T) {
	app := &cli.App{Name: "jepush", Commands: []*cli.Command{{Name: "status", Usage: "show it"}, Command("jepush")}}
	for _, tc := range []struct {
		shell string
		want  []string
		check string // a shell that parses the script, if installed
	}{
		{"bash", []string{"complete -o bashdefault -o default -F _jepush_complete jepush", "--generate-bash-completion"}, "bash"},
		{"zsh", []string{"#compdef jepush", "compdef _jepush jepush"}, "zsh"},
		{"fish", []string{"complete -c jepush", "status"}, "fish"},
	} {
		s, err := Script(app, tc.shell)
		if err != nil {
			t.Fatalf("%s: %v", tc.shell, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(s, w) {
				t.Errorf("%s script lacks %q:\n%s", tc.shell, w, s)
			}
		}
		if sh, err := exec.LookPath(tc.check); err == nil {
			cmd := exec.Command(sh, "-n")
			cmd.Stdin = strings.NewReader(s)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", tc.check, err, out)
			}
		}
	}
	if _, err := Script(app, "tcsh"); err == nil || !strings.Contains(err.Error(), "bash, zsh, fish") {
		t.Errorf("tcsh: %v", err)
	}
	if !Asked([]string{"jepush", "status", Flag}) || Asked([]string{"jepush", Flag, "status"}) || Asked([]string{"jepush"}) {
		t.Error("Asked")
	}
}
