package command

import (
	"fmt"
	"slices"

	"github.com/jecloud/jecloud/internal/placement"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/urfave/cli/v2"
)

// placeFlags say where this server stands in its environment (app.json
// "placement"); deploy and place take them.
func placeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "role", Usage: "this server's `ROLE` in the environment (web, worker, ...): with jecloud.toml's [roles], which process types run here"},
		&cli.StringSliceFlag{Name: "roles", Usage: "the roles that have servers in the environment (`ROLE,...`): the types of a role without servers run on web servers"},
	}
}

// placementOf reads --role and --roles; nil when neither is given.
func placementOf(c *cli.Context) (*placement.Server, error) {
	if !c.IsSet("role") && !c.IsSet("roles") {
		return nil, nil
	}
	p := &placement.Server{Role: c.String("role"), Roles: c.StringSlice("roles")}
	if p.Role == "" {
		p.Role = placement.Web
	}
	if !slices.Contains(p.Roles, p.Role) {
		p.Roles = append(p.Roles, p.Role)
	}
	slices.Sort(p.Roles)
	p.Roles = slices.Compact(p.Roles)
	if err := p.Check(); err != nil {
		return nil, fmt.Errorf("--role/--roles: %w", err)
	}
	return p, nil
}

// recordPlacement writes p into app.json and reports whether it changed.
func recordPlacement(l state.Layout, ae state.AppEnv, p *placement.Server) (bool, error) {
	changed := false
	_, err := state.UpdateApp(l.AppJSON(ae), func(a *state.App) error {
		if placement.Same(a.Placement, p) {
			return nil
		}
		a.Placement, changed = p, true
		return nil
	})
	return changed, err
}

func placeCommand() *cli.Command {
	return &cli.Command{
		Name:      "place",
		Usage:     "set this server's role in the app environment, and apply it",
		ArgsUsage: "APP ENV --role ROLE [--roles ROLE,...]",
		Description: "Records the server's role and the roles the environment has in app.json\n" +
			"(\"placement\"), then, when that changed, restarts the live version so that the node\n" +
			"hook starts the process types placed here and stops the others (jecloud.toml's [roles]).",
		Flags: append(append(placeFlags(), &cli.BoolFlag{Name: "no-restart", Usage: "apply at the next deploy or restart only"}), waitFlags...),
		Action: func(c *cli.Context) error {
			ae, err := appEnvArgs(c, 2, 2)
			if err != nil {
				return err
			}
			p, err := placementOf(c)
			if err != nil {
				return err
			}
			if p == nil {
				return fmt.Errorf("place: give --role ROLE (and --roles with the roles that have servers)")
			}
			changed, err := recordPlacement(layout(c), ae, p)
			if err != nil {
				return err
			}
			if !changed {
				fmt.Fprintf(c.App.Writer, "%s: already a %s server (roles %v): nothing to do\n", ae, p.Role, p.Roles)
				return nil
			}
			fmt.Fprintf(c.App.Writer, "%s: now a %s server (roles with servers: %v)\n", ae, p.Role, p.Roles)
			if c.Bool("no-restart") {
				return nil
			}
			return restartLive(c, ae)
		},
	}
}
