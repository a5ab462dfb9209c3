package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jecloud/jecloud/internal/appspec"
	"github.com/jecloud/jecloud/internal/oneoff"
)

// Runtime says what the one-off processes of a Node.js release (its release
// command, `jeagent run`) run with, as its units do: the pinned Node.js
// first on PATH, then the release's node_modules/.bin, and NODE_ENV. A
// release without package.json is not the hook's business.
func (h *Hook) Runtime(root, releaseDir string) (oneoff.Runtime, bool, error) {
	spec, err := appspec.Read(releaseDir)
	if err != nil || spec.Node == nil {
		return oneoff.Runtime{}, false, err
	}
	b, err := os.ReadFile(filepath.Join(releaseDir, ".jecloud", "node-version"))
	if err != nil {
		return oneoff.Runtime{}, false, fmt.Errorf("no pinned Node.js version in %s: the install phase did not run", releaseDir)
	}
	bin := (&Runtimes{Dir: runtimesDir(root)}).Bin(strings.TrimSpace(string(b)))
	return oneoff.Runtime{
		Path:     []string{bin, filepath.Join(releaseDir, "node_modules", ".bin")},
		ReadOnly: []string{filepath.Dir(bin)},
		Env:      map[string]string{"NODE_ENV": "production"},
	}, true, nil
}
