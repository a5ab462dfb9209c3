package command

import (
	"fmt"

	"github.com/jecloud/jecloud/internal/names"
	"github.com/jecloud/jecloud/internal/versions"
	"github.com/urfave/cli/v2"
)

func receiveCommand() *cli.Command {
	return &cli.Command{
		Name:      "receive",
		Usage:     "store a bundle read on stdin as version ID, after checking its hash",
		ArgsUsage: "APP ENV ID",
		Description: "Writes stdin to a temp file beside versions/ID.tar.zst while hashing its tar stream and\n" +
			"checking every entry; renames it into place only if the SHA-256 matches ID. Nothing is left\n" +
			"behind on any failure. `jepush` calls this over SSH.\n\n" +
			"With --delta-from BASE, stdin is a delta against version BASE's bundle (see `jeagent\n" +
			"manifest`): the bundle of ID is rebuilt from both, then checked and stored the same way.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "delta-from", Usage: "stdin is a delta against version `BASE`, whose bundle is here"},
		},
		Action: func(c *cli.Context) error {
			ae, id, err := appEnvVersionArgs(c)
			if err != nil {
				return err
			}
			store := versionStore(c)
			in := c.App.Reader
			if base := c.String("delta-from"); base != "" {
				if err := names.CheckVersion(base); err != nil {
					return err
				}
				n, err := store.ReceiveDelta(ae, base, id, in)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "received %s as changes against %s (rebuilt bundle: %d bytes)\n", id, base, n)
				return nil
			}
			n, err := store.Receive(ae, id, in)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "received %s (%d bytes)\n", id, n)
			return nil
		},
	}
}

// versionStore is the store of versions under --root.
func versionStore(c *cli.Context) versions.Store {
	return versions.Store{Layout: layout(c), Reserve: diskReserve}
}
