package builtin

import (
	"context"
	"fmt"
	"os"

	"github.com/jecloud/jecloud/internal/sysd"
)

// Service is what a service hook (Redis, MongoDB) keeps for one app
// environment, as its destroy phase removes it.
type Service struct {
	// Name is the service as the log says it ("Redis").
	Name string
	// Units are the unit names under the app environment's prefix
	// (sysd.RemoveAppUnits patterns): the service, its backup timer.
	Units []string
	// Config is removed always; DataDir and Secrets (the passwords the
	// data was written under) only with the destroy's --data.
	Config  string
	DataDir string
	Secrets []string
}

// Destroy stops and removes s's units (from unitDir) and its
// configuration; its data and secrets only with e.Req.Data. Backups on S3
// are never removed here.
func (s Service) Destroy(ctx context.Context, unitDir string, e Env) error {
	req := e.Req
	for _, u := range s.Units {
		if _, err := sysd.RemoveAppUnits(ctx, unitDir, req.App, req.Env, u, e.Log); err != nil {
			return err
		}
	}
	_, err := os.Stat(s.DataDir)
	had := err == nil
	remove := []string{s.Config}
	if req.Data {
		remove = append(append(remove, s.DataDir), s.Secrets...)
	}
	for _, p := range remove {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	switch {
	case !had:
	case req.Data:
		fmt.Fprintf(e.Log, "%s of %s/%s removed with its data\n", s.Name, req.App, req.Env)
	default:
		fmt.Fprintf(e.Log, "%s of %s/%s removed; its data stays in %s (--data removes it)\n", s.Name, req.App, req.Env, s.DataDir)
	}
	return nil
}
