package rollforward

import (
	"context"
	"os"
)

// removeAll removes the leftovers of interrupted work that the plan found.
func removeAll(paths []string) func(context.Context) error {
	return func(ctx context.Context) error {
		for _, p := range paths {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		}
		return nil
	}
}
