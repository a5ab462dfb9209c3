package hook

import (
	"context"
	"fmt"
	"io"
	"maps"

	"github.com/jecloud/jecloud/internal/configvars"
)

// RunPhase runs every hook for req.Phase in order, giving each the vars the
// ones before it returned, and stops at the first failure. It returns the
// vars collected. After each hook that returned vars, save (if not nil)
// is given all of them, so that they outlive the run: the roll-forward
// keeps them for the later phases and the app's units. A var the app
// could not be given (a bad name, or one JeCloud sets itself, such as
// PORT) fails the hook that returned it.
func RunPhase(ctx context.Context, hooks []Hook, req Request, log io.Writer, save func(map[string]string) error) (map[string]string, error) {
	vars := maps.Clone(req.Vars)
	for _, h := range hooks {
		r := req
		r.Vars = maps.Clone(vars) // its own: the next hooks' vars do not change it
		resp, err := h.Run(ctx, r, log)
		if err != nil {
			return vars, err
		}
		if len(resp.Vars) == 0 {
			continue
		}
		for k := range resp.Vars {
			if err := configvars.CheckName(k); err != nil {
				return vars, &Error{Hook: h.Name(), Phase: req.Phase,
					Reason: fmt.Sprintf("it returned a var the app cannot be given: %v (in its vars on stdout)", err)}
			}
		}
		if vars == nil {
			vars = map[string]string{}
		}
		maps.Copy(vars, resp.Vars)
		if save != nil {
			if err := save(vars); err != nil {
				return vars, fmt.Errorf("keeping the vars hook %s returned: %w", h.Name(), err)
			}
		}
	}
	return vars, nil
}
