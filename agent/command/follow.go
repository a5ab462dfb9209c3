package command

import (
	"fmt"

	"github.com/jecloud/jecloud/internal/fleet"
	"github.com/urfave/cli/v2"
)

func followCommand() *cli.Command {
	return &cli.Command{
		Name:      "follow",
		Usage:     "make this server follow an app environment in the global state on S3",
		ArgsUsage: "APP ENV",
		Description: "Sets \"global\" in sys/server.json: from then on each roll-forward reads the\n" +
			"environment's document (s3://BUCKET/envs/APP/ENV.json), deploys the version it\n" +
			"requests when a rollout slot is free, and writes back what this server runs.\n" +
			"Credentials: the instance role, or sys/global.env (root-only). jepush runs this\n" +
			"when an environment deploys through S3. See docs/ec2.md.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "bucket", Required: true, Usage: "the state bucket"},
			&cli.StringFlag{Name: "server", Required: true, Usage: "this server's name in the document"},
			&cli.StringFlag{Name: "region", Value: "us-east-1", Usage: "the bucket's region"},
			&cli.StringFlag{Name: "owner", Usage: "the account that must own the bucket"},
			&cli.StringFlag{Name: "endpoint", Usage: "an S3-compatible server (path-style)"},
		},
		Action: func(c *cli.Context) error {
			ae, err := appEnvArgs(c, 2, 2)
			if err != nil {
				return err
			}
			l := layout(c)
			changed, err := fleet.Follow(l.Root, fleet.Settings{Bucket: c.String("bucket"), Region: c.String("region"),
				Owner: c.String("owner"), Endpoint: c.String("endpoint"), Server: c.String("server")}, ae.App+"/"+ae.Env)
			if err != nil {
				return err
			}
			if changed {
				fmt.Fprintf(c.App.Writer, "%s follows s3://%s/envs/%s/%s.json as %s\n", ae, c.String("bucket"), ae.App, ae.Env, c.String("server"))
			} else {
				fmt.Fprintf(c.App.Writer, "%s already follows s3://%s/envs/%s/%s.json\n", ae, c.String("bucket"), ae.App, ae.Env)
			}
			return nil
		},
	}
}
