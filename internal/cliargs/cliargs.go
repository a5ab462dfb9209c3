// Package cliargs lets flags stand after positional arguments with
// urfave/cli v2, which stops parsing flags at the first positional argument:
// `jeagent deploy APP ENV ID --wait` is rewritten to
// `jeagent deploy --wait APP ENV ID` before the app parses it.
package cliargs

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// Permute returns args (args[0] is the program name) with the flags of the
// command being run moved in front of its positional arguments. Everything
// after a "--" is left as it is.
func Permute(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	flags := app.Flags
	cmds := app.Commands
	rest := args[1:]
	// Walk down the command tree: global flags, then a command name, then its flags...
	for {
		var before []string
		i := 0
		for i < len(rest) && strings.HasPrefix(rest[i], "-") && rest[i] != "-" && rest[i] != "--" {
			before = append(before, rest[i])
			if takesValue(flags, rest[i]) && i+1 < len(rest) {
				before = append(before, rest[i+1])
				i++
			}
			i++
		}
		out = append(out, before...)
		rest = rest[i:]
		if len(rest) == 0 {
			return out
		}
		if c := find(cmds, rest[0]); c != nil {
			out = append(out, rest[0])
			rest = rest[1:]
			flags, cmds = c.Flags, c.Subcommands
			continue
		}
		if len(cmds) > 0 {
			// Not a command of ours: let cli report it as it is.
			return append(out, rest...)
		}
		break
	}
	// rest: the positional arguments of the last command, with flags among them.
	var fl, pos []string
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			pos = append(pos, rest[i:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			fl = append(fl, a)
			if takesValue(flags, a) && i+1 < len(rest) {
				fl = append(fl, rest[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	out = append(out, fl...)
	return append(out, pos...)
}

func find(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// takesValue reports whether arg ("-x", "--name", not "--name=v") is a flag
// that consumes the next argument as its value.
func takesValue(flags []cli.Flag, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			if df, ok := f.(cli.DocGenerationFlag); ok {
				return df.TakesValue()
			}
			return false
		}
	}
	return false
}

// MissingValue returns the flag of args that takes a value but has none
// (it is the last argument, or "--" or another flag of the command follows
// it), or "". Without this check, Permute's moving of flags would hand the
// flag the first positional argument as its value.
func MissingValue(app *cli.App, args []string) string {
	flags, cmds := app.Flags, app.Commands
	positional := false
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return ""
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			if !takesValue(flags, a) {
				continue
			}
			if i+1 == len(args) || args[i+1] == "--" || isFlag(flags, args[i+1]) {
				return "--" + strings.TrimLeft(a, "-")
			}
			i++
			continue
		}
		if c := find(cmds, a); c != nil && !positional {
			flags, cmds = c.Flags, c.Subcommands
			continue
		}
		positional = true
	}
	return ""
}

// isFlag reports whether arg names one of flags ("--force", "-f", "--root=x").
func isFlag(flags []cli.Flag, arg string) bool {
	if !strings.HasPrefix(arg, "-") || arg == "-" {
		return false
	}
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}
