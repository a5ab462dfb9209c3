package plan

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/jecloud/jecloud/internal/atomicfile"
)

// UploadGrace is how long an upload's, a state write's or a config write's
// temp file is left alone: other processes (`jeagent receive`, `jeagent
// deploy`, `jeagent config:set`) make those while a run goes on. Extraction
// and deletion dirs and symlink temps are made only by the run holding the
// lock, so any found are leftovers.
const UploadGrace = time.Hour

// concurrentTemp reports whether name is the temp of a file that other
// processes write while a run goes on: a bundle (receive), a state file,
// config.env (`jeagent config:set`).
func concurrentTemp(name string) bool {
	base, ok := atomicfile.TempFor(name)
	return ok && (strings.HasSuffix(base, ".tar.zst") || strings.HasSuffix(base, ".json") || strings.HasSuffix(base, ".env"))
}

func planLeftovers(o *Env, now time.Time) (Step, bool) {
	var remove []string
	for _, t := range o.temps {
		name := filepath.Base(t.path)
		if strings.HasSuffix(name, ".lock") {
			continue
		}
		if concurrentTemp(name) && now.Sub(t.modTime) < UploadGrace {
			continue
		}
		remove = append(remove, t.path)
	}
	if len(remove) == 0 {
		return Step{}, false
	}
	return Step{AppEnv: o.AppEnv, Name: Leftovers, Env: o, Paths: remove,
		Reason: fmt.Sprintf("%d leftover(s) of interrupted work, e.g. %s", len(remove), filepath.Base(remove[0]))}, true
}
