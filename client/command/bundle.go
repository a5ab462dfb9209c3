package command

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/jecloud/jecloud/internal/bundle"
	"github.com/jecloud/jecloud/internal/progress"
)

func bundleCommand() *cli.Command {
	return &cli.Command{
		Name:      "bundle",
		Usage:     "print DIR's version ID; with -o, also write its bundle",
		ArgsUsage: "DIR",
		Description: "Prints the version ID of DIR: the first 12 hex digits of the SHA-256 of its\n" +
			"canonical tar. The same tree always gives the same ID. With -o FILE the bundle\n" +
			"(tar + zstd) is written to FILE (\"-\": standard output, and the ID to standard\n" +
			"error). With --list, prints the files that go in instead.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the bundle to `FILE` (- for standard output)"},
			&cli.BoolFlag{Name: "list", Usage: "print the paths that go into the bundle, one a line, and nothing else"},
		},
		Action: func(c *cli.Context) error {
			if err := args(c, 1, 1, "DIR"); err != nil {
				return err
			}
			dir := c.Args().Get(0)
			if c.Bool("list") {
				files, err := bundle.Files(dir)
				if err != nil {
					return err
				}
				for _, f := range files {
					fmt.Fprintln(c.App.Writer, f)
				}
				return nil
			}
			id, err := writeBundle(c, dir, c.String("output"))
			if err != nil {
				return err
			}
			if c.String("output") == "-" {
				fmt.Fprintln(c.App.ErrWriter, id)
			} else {
				fmt.Fprintln(c.App.Writer, id)
			}
			return nil
		},
	}
}

// writeBundle writes dir's bundle to out ("" nowhere, "-" stdout, else a
// file, replaced only once complete) and returns its ID.
func writeBundle(c *cli.Context, dir, out string) (string, error) {
	opt := bundle.WriteOptions{}
	if f, ok := c.App.ErrWriter.(*os.File); ok && canRedraw(f) {
		bar := progress.Start(f, true, "bundling "+dir, 0)
		opt.Progress = func(n int, b int64) { bar.Set(n, b) }
		defer bar.Done("")
	}
	switch out {
	case "":
		return bundle.Write(dir, io.Discard, opt)
	case "-":
		return bundle.Write(dir, c.App.Writer, opt)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return "", fmt.Errorf("write bundle: %w", err)
	}
	defer os.Remove(tmp.Name())
	id, err := bundle.Write(dir, tmp, opt)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Close()
	} else {
		tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), out)
	}
	if err != nil {
		return "", fmt.Errorf("write bundle %s: %w", out, err)
	}
	return id, nil
}
