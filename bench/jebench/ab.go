package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

type strList []string

func (s *strList) String() string     { return strings.Join(*s, ", ") }
func (s *strList) Set(v string) error { *s = append(*s, v); return nil }

// abCmd times shell commands interleaved: each round runs every command
// once (after its -prepare, not timed), starting with a different one each
// round, so that a machine whose speed drifts (other tenants, the page
// cache, the filesystem's state) slows them all alike instead of whichever
// hyperfine happened to run last. For command i it prints Pi_median_ms,
// Pi_mean_ms, Pi_min_ms, Pi_max_ms (wall) and Pi_cpu_ms (median of user+sys
// of the shell and what it waited for), and Pi_runs.
func abCmd(args []string) error {
	fs := flag.NewFlagSet("ab", flag.ExitOnError)
	var cmds, preps strList
	fs.Var(&cmds, "cmd", "a shell command to time (repeat)")
	fs.Var(&preps, "prepare", "its preparation: one for all commands, or one per -cmd")
	n := fs.Int("n", 5, "rounds")
	warmup := fs.Int("warmup", 0, "rounds before measuring")
	prefix := fs.String("prefix", "ab", "prefix of the printed names")
	fs.Parse(args)
	if len(cmds) == 0 || len(preps) > 1 && len(preps) != len(cmds) {
		return errors.New("usage: jebench ab [-n N] [-warmup N] [-prefix P] -prepare SH -cmd SH [-prepare SH -cmd SH]...")
	}
	prep := func(i int) string {
		switch len(preps) {
		case 0:
			return ""
		case 1:
			return preps[0]
		}
		return preps[i]
	}
	walls := make([][]float64, len(cmds))
	cpus := make([][]float64, len(cmds))
	for round := range *warmup + *n {
		for k := range cmds {
			i := (k + round) % len(cmds)
			if p := prep(i); p != "" {
				if out, err := exec.Command("sh", "-c", p).CombinedOutput(); err != nil {
					return fmt.Errorf("prepare %q: %v\n%s", p, err, out)
				}
			}
			c := exec.Command("sh", "-c", cmds[i])
			var stderr strings.Builder
			c.Stderr = &stderr
			start := time.Now()
			if err := c.Run(); err != nil {
				return fmt.Errorf("%q: %v\n%s", cmds[i], err, stderr.String())
			}
			wall := float64(time.Since(start).Microseconds()) / 1e3
			if round < *warmup {
				continue
			}
			ru := c.ProcessState.SysUsage().(*syscall.Rusage)
			ms := func(tv syscall.Timeval) float64 { return float64(tv.Sec)*1e3 + float64(tv.Usec)/1e3 }
			walls[i] = append(walls[i], wall)
			cpus[i] = append(cpus[i], ms(ru.Utime)+ms(ru.Stime))
		}
	}
	for i := range cmds {
		p := fmt.Sprintf("%s%d_", *prefix, i)
		w := slices.Clone(walls[i])
		slices.Sort(w)
		var sum float64
		for _, x := range w {
			sum += x
		}
		assign(p, "median_ms", round3(median(w)))
		assign(p, "mean_ms", round3(sum/float64(len(w))))
		assign(p, "min_ms", round3(w[0]))
		assign(p, "max_ms", round3(w[len(w)-1]))
		c := slices.Clone(cpus[i])
		slices.Sort(c)
		assign(p, "cpu_ms", round3(median(c)))
		assign(p, "runs", len(w))
		fmt.Fprintf(os.Stderr, "%-50.50s median %9.1f ms  min %9.1f  max %9.1f  (%d runs, interleaved)\n", cmds[i], median(w), w[0], w[len(w)-1], len(w))
	}
	return nil
}

// median of a sorted slice.
func median(v []float64) float64 {
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
