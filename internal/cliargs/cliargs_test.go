package cliargs

import (
	"reflect"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestPermute(t *testing.T) {
	app := &cli.App{
		Flags: []cli.Flag{&cli.StringFlag{Name: "root"}},
		Commands: []*cli.Command{
			{Name: "deploy", Flags: []cli.Flag{&cli.BoolFlag{Name: "wait"}, &cli.DurationFlag{Name: "timeout"}}},
			{Name: "config", Subcommands: []*cli.Command{{Name: "set", Flags: []cli.Flag{&cli.StringFlag{Name: "host", Aliases: []string{"H"}}}}}},
		},
	}
	for _, tc := range []struct{ in, want string }{
		{"p deploy a b c --wait", "p deploy --wait a b c"},
		{"p deploy --wait a b c", "p deploy --wait a b c"},
		{"p --root /x deploy a --timeout 5s b", "p --root /x deploy --timeout 5s a b"},
		{"p deploy a --timeout=5s b", "p deploy --timeout=5s a b"},
		{"p config set e K=V -H web1", "p config set -H web1 e K=V"},
		{"p deploy a -- --wait", "p deploy a -- --wait"},
		{"p", "p"},
		{"p unknown x --y", "p unknown x --y"},
	} {
		got := Permute(app, strings.Fields(tc.in))
		if !reflect.DeepEqual(got, strings.Fields(tc.want)) {
			t.Errorf("Permute(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMissingValue(t *testing.T) {
	app := &cli.App{
		Flags: []cli.Flag{&cli.StringFlag{Name: "root"}},
		Commands: []*cli.Command{
			{Name: "deploy", Flags: []cli.Flag{&cli.BoolFlag{Name: "wait", Aliases: []string{"w"}}, &cli.DurationFlag{Name: "timeout"}}},
		},
	}
	for _, tc := range []struct{ in, want string }{
		{"p deploy a b c --timeout", "--timeout"},
		{"p deploy --timeout a b c", ""}, // "a" is its value: cli says it is not a duration
		{"p deploy a --timeout --wait", "--timeout"},
		{"p deploy a --timeout -w", "--timeout"},
		{"p deploy a --timeout -- x", "--timeout"},
		{"p deploy a --timeout 5s", ""},
		{"p deploy a --timeout=5s", ""},
		{"p --root", "--root"},
		{"p --root /x deploy a", ""},
		{"p deploy a -- --timeout", ""},
		{"p deploy a --wait", ""},
	} {
		if got := MissingValue(app, strings.Fields(tc.in)); got != tc.want {
			t.Errorf("MissingValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
