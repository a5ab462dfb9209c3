package hook

import (
	"context"
	"io"
	"maps"
)

// RunPhase runs every hook for req.Phase in order, giving each the vars the
// ones before it returned, and stops at the first failure. It returns the
// vars collected.
func RunPhase(ctx context.Context, hooks []Hook, req Request, log io.Writer) (map[string]string, error) {
	vars := maps.Clone(req.Vars)
	for _, h := range hooks {
		r := req
		r.Vars = vars
		resp, err := h.Run(ctx, r, log)
		if err != nil {
			return vars, err
		}
		if len(resp.Vars) > 0 {
			if vars == nil {
				vars = map[string]string{}
			}
			maps.Copy(vars, resp.Vars)
		}
	}
	return vars, nil
}
