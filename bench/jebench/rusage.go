package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// rusageCmd runs a command -n times, one after another (after -prepare,
// if given, each time), and prints, from
// the kernel's accounting of each child (wait4):
//
//	wall_ms, cpu_ms (user+sys), user_ms, sys_ms   medians
//	cpu_ms_min, cpu_ms_mean, wall_ms_min
//	maxrss_kb       the largest peak RSS over the runs (see below)
//	write_bytes     bytes the runs wrote to the disk, all runs together
//	                (ru_oublock: the kernel counts a page when it is dirtied,
//	                so a write still in the page cache counts)
//	read_bytes      the same for reads that went to the disk
//
// Peak RSS: jebench starts its children the way Go does, with vfork, and
// the kernel's exec keeps the larger of the old and the new image's peak as
// the child's. So the child's figure is exact when it is larger than
// jebench's own peak (maxrss_how=wait4); otherwise the runs are made again
// under GNU time, which forks (maxrss_how=gnu-time). CPU time always comes
// from the direct runs.
func rusageCmd(args []string) error {
	fs := flag.NewFlagSet("rusage", flag.ExitOnError)
	n := fs.Int("n", 20, "measured runs")
	warmup := fs.Int("warmup", 2, "runs before measuring")
	prefix := fs.String("prefix", "", "prefix of the printed names")
	rssRuns := fs.Int("rss-runs", 3, "runs through GNU time for the peak RSS, when needed (0: never)")
	prepare := fs.String("prepare", "", "a shell command run before each run, not measured")
	fs.Parse(args)
	argv := fs.Args()
	if len(argv) == 0 {
		return errors.New("usage: jebench rusage [-n N] [-warmup N] [-prefix P] -- CMD ARGS...")
	}
	prep := func() error {
		if *prepare == "" {
			return nil
		}
		out, err := exec.Command("sh", "-c", *prepare).CombinedOutput()
		if err != nil {
			return fmt.Errorf("prepare %q: %v\n%s", *prepare, err, out)
		}
		return nil
	}
	for range *warmup {
		if err := prep(); err != nil {
			return err
		}
		if _, err := runOnce(argv); err != nil {
			return err
		}
	}
	var runs []runUsage
	for range *n {
		if err := prep(); err != nil {
			return err
		}
		u, err := runOnce(argv)
		if err != nil {
			return err
		}
		runs = append(runs, u)
	}
	maxrss, how := int64(0), "wait4"
	for _, u := range runs {
		maxrss = max(maxrss, u.maxrssKB)
	}
	var self syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	if maxrss <= self.Maxrss && *rssRuns != 0 {
		// The figure may be jebench's own peak: ask GNU time.
		if _, err := os.Stat("/usr/bin/time"); err != nil {
			return fmt.Errorf("the peak RSS of %s is below jebench's own: /usr/bin/time (apt-get install time) is needed to measure it", argv[0])
		}
		maxrss, how = 0, "gnu-time"
		for range max(*rssRuns, 1) {
			if err := prep(); err != nil {
				return err
			}
			kb, err := gnuTimeRSS(argv)
			if err != nil {
				return err
			}
			maxrss = max(maxrss, kb)
		}
	}
	med := func(f func(runUsage) float64) float64 {
		v := make([]float64, len(runs))
		for i, u := range runs {
			v[i] = f(u)
		}
		slices.Sort(v)
		return median(v)
	}
	var cpuMin, wallMin, cpuSum float64 = 1e18, 1e18, 0
	var writes, reads int64
	for _, u := range runs {
		cpuMin = min(cpuMin, u.cpuMS())
		wallMin = min(wallMin, u.wallMS)
		cpuSum += u.cpuMS()
		writes += u.oublock * 512
		reads += u.inblock * 512
	}
	p := *prefix
	assign(p, "runs", len(runs))
	assign(p, "wall_ms", round3(med(func(u runUsage) float64 { return u.wallMS })))
	assign(p, "wall_ms_min", round3(wallMin))
	assign(p, "cpu_ms", round3(med(runUsage.cpuMS)))
	assign(p, "cpu_ms_min", round3(cpuMin))
	assign(p, "cpu_ms_mean", round3(cpuSum/float64(len(runs))))
	assign(p, "user_ms", round3(med(func(u runUsage) float64 { return u.userMS })))
	assign(p, "sys_ms", round3(med(func(u runUsage) float64 { return u.sysMS })))
	assign(p, "maxrss_kb", maxrss)
	assign(p, "maxrss_how", how)
	assign(p, "write_bytes", writes)
	assign(p, "read_bytes", reads)
	return nil
}

type runUsage struct {
	wallMS, userMS, sysMS float64
	maxrssKB              int64
	oublock, inblock      int64
}

func (u runUsage) cpuMS() float64 { return u.userMS + u.sysMS }

func runOnce(argv []string) (runUsage, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return runUsage{}, fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	ms := func(tv syscall.Timeval) float64 { return float64(tv.Sec)*1e3 + float64(tv.Usec)/1e3 }
	return runUsage{
		wallMS:   float64(wall.Microseconds()) / 1e3,
		userMS:   ms(ru.Utime),
		sysMS:    ms(ru.Stime),
		maxrssKB: ru.Maxrss,
		oublock:  ru.Oublock,
		inblock:  ru.Inblock,
	}, nil
}

// gnuTimeRSS runs argv under GNU time and returns the child's peak RSS in KiB.
func gnuTimeRSS(argv []string) (int64, error) {
	out, err := os.CreateTemp("", "jebench-time-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(out.Name())
	out.Close()
	cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M", "-o", out.Name(), "--"}, argv...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("/usr/bin/time %s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
	}
	b, err := os.ReadFile(out.Name())
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
