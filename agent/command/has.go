package command

import (
	"fmt"
	"os"

	"github.com/jecloud/jecloud/internal/bundle"
	"github.com/jecloud/jecloud/internal/names"
	"github.com/jecloud/jecloud/internal/state"

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
			"agent speaks (jeagent-protocol: N), for jepush to warn when they differ; then the\n" +
			"newest delta format it reads (jeagent-delta: 2) and the live version whose bundle is here\n" +
			"(jeagent-live: ID), for jepush to send its changes against a manifest it kept.",
		Action: func(c *cli.Context) error {
			ae, id, err := appEnvVersionArgs(c)
			if err != nil {
				return err
			}
			// jepush reads the protocol line to warn of an agent of another release.
			fmt.Fprint(c.App.Writer, version.ProtocolLine())
			fmt.Fprintf(c.App.Writer, "jeagent-delta: %d\n", bundle.DeltaFormat)
			if live := liveWithBundle(c, ae); live != "" {
				fmt.Fprintf(c.App.Writer, "jeagent-live: %s\n", live)
			}
			if !versionStore(c).Has(ae, id) {
				return &exitError{3, fmt.Errorf("%s: version %s is not here", ae, id)}
			}
			fmt.Fprintf(c.App.Writer, "%s: version %s is here\n", ae, id)
			return nil
		},
	}
}

// liveWithBundle returns the version live in ae if its bundle is here
// (what `jeagent manifest` would describe), or "".
func liveWithBundle(c *cli.Context, ae state.AppEnv) string {
	l := layout(c)
	live, err := os.Readlink(l.Current(ae))
	if err != nil || names.CheckVersion(live) != nil {
		return ""
	}
	if _, err := os.Stat(l.Bundle(ae, live)); err != nil {
		return ""
	}
	return live
}
