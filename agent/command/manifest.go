package command

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/jecloud/jecloud/internal/bundle"
	"github.com/jecloud/jecloud/internal/names"
	"github.com/urfave/cli/v2"
)

func manifestCommand() *cli.Command {
	return &cli.Command{
		Name:      "manifest",
		Usage:     "write the manifest of the live version's bundle on stdout (zstd JSON); exit 3 if there is none",
		ArgsUsage: "APP ENV",
		Description: "Lists every entry of the bundle of the version live in APP ENV, with a digest of each\n" +
			"file. `jepush` compares it with its tree and sends only what changed\n" +
			"(`jeagent receive --delta-from`). Exit status 3: no live version, or its bundle is gone.",
		Action: func(c *cli.Context) error {
			ae, err := appEnvArgs(c, 2, 2)
			if err != nil {
				return err
			}
			l := layout(c)
			base, err := os.Readlink(l.Current(ae))
			if err != nil || names.CheckVersion(base) != nil {
				return &exitError{3, fmt.Errorf("%s: no live version to send changes against", ae)}
			}
			f, err := os.Open(l.Bundle(ae, base))
			if errors.Is(err, fs.ErrNotExist) {
				return &exitError{3, fmt.Errorf("%s: the bundle of live version %s is gone", ae, base)}
			}
			if err != nil {
				return err
			}
			defer f.Close()
			m, err := bundle.ReadManifest(f, bundle.DefaultLimits())
			if err != nil {
				return fmt.Errorf("%s: %w", l.Bundle(ae, base), err)
			}
			return bundle.WriteManifest(c.App.Writer, m)
		},
	}
}
