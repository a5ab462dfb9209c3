// Package completion gives jepush and jeagent shell completion: the
// `completion SHELL` command prints a script for bash, zsh or fish. The
// bash and zsh scripts ask the program itself (urfave/cli's
// --generate-bash-completion), so they follow its commands and flags; the
// fish script is generated from them.
package completion

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// Shells are the shells Script knows.
var Shells = []string{"bash", "zsh", "fish"}

// Flag is the argument with which the scripts ask for completions; a
// command line ending in it completes and runs nothing.
const Flag = "--generate-bash-completion"

// Asked reports whether args (os.Args) ask for completions.
func Asked(args []string) bool { return len(args) > 1 && args[len(args)-1] == Flag }

const bash = `# bash completion for PROG: PROG completion bash > /etc/bash_completion.d/PROG
_PROG_complete() {
  local cur opts
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  if [[ "$cur" == -* ]]; then
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
  return 0
}
complete -o bashdefault -o default -F _PROG_complete PROG
`

const zsh = `#compdef PROG
# zsh completion for PROG: PROG completion zsh > "${fpath[1]}/_PROG"
_PROG() {
  local -a opts
  local cur
  cur=${words[-1]}
  if [[ "$cur" == -* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} "$cur" --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
if [ "$funcstack[1]" = "_PROG" ]; then
  _PROG "$@"
else
  compdef _PROG PROG
fi
`

// Script returns app's completion script for shell.
func Script(app *cli.App, shell string) (string, error) {
	prog := app.Name
	switch shell {
	case "bash":
		return strings.ReplaceAll(bash, "PROG", prog), nil
	case "zsh":
		return strings.ReplaceAll(zsh, "PROG", prog), nil
	case "fish":
		return app.ToFishCompletion()
	}
	return "", fmt.Errorf("no completion for shell %q: give one of %s", shell, strings.Join(Shells, ", "))
}

// Command is prog's `completion SHELL` command.
func Command(prog string) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		ArgsUsage: "SHELL",
		Description: strings.ReplaceAll("bash:  PROG completion bash | sudo tee /etc/bash_completion.d/PROG\n"+
			"zsh:   PROG completion zsh > \"${fpath[1]}/_PROG\"   (then: compinit)\n"+
			"fish:  PROG completion fish > ~/.config/fish/completions/PROG.fish\n"+
			"The .deb installs jeagent's; `make` writes both programs' to bin/completion/.", "PROG", prog),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("completion expects SHELL (%s), got %d argument(s)", strings.Join(Shells, ", "), c.NArg())
			}
			s, err := Script(c.App, c.Args().First())
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(c.App.Writer, s)
			return err
		},
	}
}
