package command

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/jecloud/jecloud/internal/version"
)

func hasCommand() *cli.Command {
	return &cli.Command{
		Name:      "has",
		Usage:     "exit 0 if version ID is on this server, 3 if not",
		ArgsUsage: "APP ENV ID",
		Description: "`jepush` asks this before uploading: a version the server has (as a bundle or an\n" +
			"extracted release) is not sent again. Its first line states the protocol version this\n" +
			"agent speaks (jeagent-protocol: N), for jepush to warn when they differ.",
		Action: func(c *cli.Context) error {
			ae, id, err := appEnvVersionArgs(c)
			if err != nil {
				return err
			}
			// jepush reads the protocol line to warn of an agent of another release.
			fmt.Fprint(c.App.Writer, version.ProtocolLine())
			if !versionStore(c).Has(ae, id) {
				return &exitError{3, fmt.Errorf("%s: version %s is not here", ae, id)}
			}
			fmt.Fprintf(c.App.Writer, "%s: version %s is here\n", ae, id)
			return nil
		},
	}
}
