// Command gendocs writes the man pages and shell completion scripts of
// jepush and jeagent, built from their commands' own help: `make build`
// and `make deb` run it (go run ./scripts/gendocs bin). It is built without
// the urfave_cli_no_docs tag of the programs, which leaves urfave/cli's
// man page writer out of them.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	agent "github.com/jecloud/jecloud/agent/command"
	jepush "github.com/jecloud/jecloud/client/command"
	"github.com/jecloud/jecloud/internal/completion"
	"github.com/jecloud/jecloud/internal/version"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gendocs OUTDIR (writes OUTDIR/man/*.1 and OUTDIR/completion/*)")
		os.Exit(2)
	}
	if err := write(os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: %v\n", err)
		os.Exit(1)
	}
}

func write(out string) error {
	for _, dir := range []string{"man", "completion"} {
		if err := os.MkdirAll(filepath.Join(out, dir), 0o755); err != nil {
			return err
		}
	}
	for _, app := range []*cli.App{jepush.App(), agent.App()} {
		// The man page says which release it documents; no date, so that
		// the same sources give the same page (and .deb).
		app.Version = version.Get(app.Name).Version
		man, err := app.ToManWithSection(1)
		if err != nil {
			return fmt.Errorf("%s man page: %w", app.Name, err)
		}
		files := map[string]string{filepath.Join("man", app.Name+".1"): man}
		for _, sh := range completion.Shells {
			s, err := completion.Script(app, sh)
			if err != nil {
				return err
			}
			name := map[string]string{"bash": app.Name, "zsh": "_" + app.Name, "fish": app.Name + ".fish"}[sh]
			files[filepath.Join("completion", sh, name)] = s
		}
		for name, content := range files {
			p := filepath.Join(out, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
