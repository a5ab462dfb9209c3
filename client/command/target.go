package command

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jecloud/jecloud/internal/config"
	"github.com/jecloud/jecloud/internal/globalstate"
	"github.com/jecloud/jecloud/internal/names"
	"github.com/jecloud/jecloud/internal/push"
	"github.com/jecloud/jecloud/internal/shellquote"
)

// targetFlags say where an environment's agents are, over the config file.
func targetFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "host", Usage: "use this SSH destination instead of the config's hosts; repeat for several (HOST, USER@HOST, USER@HOST:PORT or a ~/.ssh/config alias)"},
		&cli.BoolFlag{Name: "local", Usage: "use the agent on this machine, without SSH"},
		&cli.StringFlag{Name: "root", Usage: "the agent's root directory (default: the config's root; for --local $JECLOUD_ROOT, else /var/cloud)"},
		&cli.StringFlag{Name: "agent", Usage: "the command that runs jeagent (default: the config's agent, else jeagent; over SSH as a user other than root, sudo -n jeagent)"},
	}
}

// dirFlag names the app directory for commands that do not take it as an argument.
func dirFlag() cli.Flag {
	return &cli.StringFlag{Name: "dir", Value: ".", Usage: "the app directory (where jecloud.toml or package.json is)"}
}

// newClient loads dir's config and returns a client for environment env.
func newClient(c *cli.Context, dir, env string) (*push.Client, error) {
	cl, _, err := loadClient(c, dir, env, false)
	return cl, err
}

// envClient checks that the command got one argument, ENV, and returns the
// client for it (the app directory from --dir).
func envClient(c *cli.Context) (*push.Client, error) {
	if err := args(c, 1, 1, "ENV"); err != nil {
		return nil, err
	}
	return newClient(c, c.String("dir"), c.Args().Get(0))
}

// loadClient is newClient, also returning the config.
// makeServers: an EC2 environment's missing servers are made (only a push does).
func loadClient(c *cli.Context, dir, env string, makeServers bool) (*push.Client, *config.Config, error) {
	if err := names.CheckEnv(env); err != nil {
		return nil, nil, usageError{err}
	}
	cfg, err := config.Load(dir)
	if err != nil {
		return nil, nil, usageError{err}
	}
	e, err := cfg.Env(env, config.Overrides{
		Hosts:     c.StringSlice("host"),
		Local:     c.Bool("local"),
		Root:      c.String("root"),
		Agent:     c.String("agent"),
		LocalRoot: os.Getenv("JECLOUD_ROOT"),
	})
	if err != nil {
		return nil, nil, usageError{err}
	}
	targets := e.Targets()
	var requested func(context.Context, string) error
	var global *push.Global
	var st *globalstate.Store
	var rot push.Rotation
	if e.EC2 != nil {
		if targets, requested, global, st, rot, err = ec2Targets(c, cfg, e, makeServers); err != nil {
			return nil, nil, err
		}
	}
	stderr := c.App.ErrWriter
	interactive, color := false, false
	if f, ok := stderr.(*os.File); ok {
		interactive, color = canRedraw(f), canColour(f)
	}
	return &push.Client{
		App:         cfg.App,
		Env:         env,
		Targets:     targets,
		Stdout:      c.App.Writer,
		Stderr:      stderr,
		Interactive: interactive,
		Color:       color,
		StatusCmd:   statusCmd(c, dir, env),
		Requested:   requested,
		Global:      global,
		Rotation:    rot,
		State:       st,
		Roles:       cfg.Roles,
		EnvRoles:    e.Roles,
		SSH:         sshOptions(),
		TreeCache:   treeCacheDir(),
		By:          pusher(),
	}, cfg, nil
}

// pusher is who pushes, as the servers record it: USER@HOST of the
// laptop or CI job.
func pusher() string {
	by := os.Getenv("USER")
	if h, err := os.Hostname(); err == nil {
		by += "@" + h
	}
	return strings.Trim(by, "@")
}

// treeCacheDir is where a push remembers the trees it has read: the user's
// cache directory, unless JEPUSH_TREE_CACHE is "off".
func treeCacheDir() string {
	if os.Getenv("JEPUSH_TREE_CACHE") == "off" {
		return ""
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "jecloud", "trees")
}

// statusCmd is the command line that shows env's status with the same
// targets, for hints.
func statusCmd(c *cli.Context, dir, env string) string {
	argv := []string{"jepush", "status", env}
	if dir != "." {
		argv = append(argv, "--dir", dir)
	}
	for _, h := range c.StringSlice("host") {
		argv = append(argv, "--host", h)
	}
	if c.Bool("local") {
		argv = append(argv, "--local")
	}
	for _, f := range []string{"root", "agent"} {
		if v := c.String(f); v != "" {
			argv = append(argv, "--"+f, v)
		}
	}
	return shellquote.Join(argv)
}

// targets lists the client's targets for messages.
func targets(cl *push.Client) string {
	ts := make([]string, len(cl.Targets))
	for i, t := range cl.Targets {
		ts[i] = t.Name()
	}
	return strings.Join(ts, ", ")
}
