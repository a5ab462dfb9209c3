package plan

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// UploadGrace is how long an upload's, a state write's or a config write's
// temp file is left alone: other processes (`jeagent receive`, `jeagent
// deploy`, `jeagent config:set`) make those while a run goes on. Extraction
// and deletion dirs and symlink temps are made only by the run holding the
// lock, so any found are leftovers.
const UploadGrace = time.Hour

func concurrentTemp(name string) bool {
	// .env: config.env, which `jeagent config:set` rewrites while a run goes on.
	return strings.Contains(name, ".tar.zst.tmp-") || strings.Contains(name, ".json.tmp-") || strings.Contains(name, ".env.tmp-")
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
