package plan

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/state"
)

// BenchmarkPlanIdle measures the planning of an idle tick in process: N app
// environments, each with one live release (bundle, extracted directory,
// current symlink) and nothing to do. `make bench` measures the whole
// jeagent-tick process the same way; the difference is start-up.
func BenchmarkPlanIdle(b *testing.B) {
	for _, n := range []int{1, 20, 200} {
		b.Run(fmt.Sprintf("envs=%d", n), func(b *testing.B) {
			l := state.Layout{Root: b.TempDir()}
			now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			for i := range n {
				ae := state.AppEnv{App: fmt.Sprintf("app%d", i/10), Env: fmt.Sprintf("env%d", i%10)}
				id := fmt.Sprintf("%012x", 0xabc000+i)
				if err := os.MkdirAll(filepath.Join(l.Release(ae, id), "public"), 0o755); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(l.Release(ae, id), "public", "index.html"), []byte("<h1>hi</h1>\n"), 0o644); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(l.Bundle(ae, id), []byte("bundle"), 0o644); err != nil {
					b.Fatal(err)
				}
				if err := os.Symlink(id, l.Current(ae)); err != nil {
					b.Fatal(err)
				}
				a := state.App{CurrentVersion: id, DeployedVersions: []state.Deployed{{Version: id, Date: now}}}
				if err := state.Write(l.AppJSON(ae), &a); err != nil {
					b.Fatal(err)
				}
			}
			check := func() {
				p, err := Make(l, now, false)
				if err != nil || len(p.Steps) > 0 || len(p.Problems) > 0 {
					b.Fatalf("an idle tree planned %v, problems %v, err %v", p.Steps, p.Problems, err)
				}
			}
			check()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				check()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(n), "µs/env")
		})
	}
}
