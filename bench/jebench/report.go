package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// hfCmd prints the results of a hyperfine --export-json file as shell
// assignments, in milliseconds: P0_mean_ms, P0_stddev_ms, P0_median_ms,
// P0_min_ms, P0_max_ms, P0_user_ms, P0_sys_ms, P0_runs for the first
// command, P1_... for the second, and so on.
func hfCmd(args []string) error {
	fs := flag.NewFlagSet("hf", flag.ExitOnError)
	prefix := fs.String("prefix", "hf", "prefix of the printed names")
	fs.Parse(args)
	if fs.NArg() != 1 {
		return errors.New("usage: jebench hf [-prefix P] FILE.json")
	}
	b, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	var doc struct {
		Results []struct {
			Mean, Stddev, Median, Min, Max, User, System float64
			Times                                        []float64
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	for i, r := range doc.Results {
		p := fmt.Sprintf("%s%d_", *prefix, i)
		ms := func(s float64) float64 { return round3(s * 1000) }
		assign(p, "mean_ms", ms(r.Mean))
		assign(p, "stddev_ms", ms(r.Stddev))
		assign(p, "median_ms", ms(r.Median))
		assign(p, "min_ms", ms(r.Min))
		assign(p, "max_ms", ms(r.Max))
		assign(p, "user_ms", ms(r.User))
		assign(p, "sys_ms", ms(r.System))
		assign(p, "runs", len(r.Times))
	}
	return nil
}

// tableCmd renders the results file of run.sh as a Markdown table. Each
// line of the file is tab-separated:
//
//	ID  WHAT  REFERENCE  REF_VALUE  VALUE  UNIT  CHECK  TARGET
//
// REF_VALUE and VALUE are numbers in UNIT (ms, KB, B, x, or "" for a
// count); REF_VALUE may be "-" when there is no reference. CHECK is how
// the target is judged: "ratio<=1.5" (VALUE/REF_VALUE), "value<5",
// "value==0", or "-" (for information). TARGET is the target as people
// read it.
func tableCmd(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: jebench table FILE.tsv")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Println("| # | what | reference | reference measured | measured | ratio | target | met? |")
	fmt.Println("|---|---|---|---:|---:|---:|---|---|")
	sc := bufio.NewScanner(f)
	misses := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		c := strings.Split(line, "\t")
		if len(c) != 8 {
			return fmt.Errorf("%s: want 8 tab-separated fields, got %d: %q", args[0], len(c), line)
		}
		id, what, refName, refS, valS, unit, check, target := c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
		val, err := strconv.ParseFloat(valS, 64)
		if err != nil {
			return fmt.Errorf("%s: value %q: %w", args[0], valS, err)
		}
		ref, ratio := math.NaN(), math.NaN()
		if refS != "-" {
			if ref, err = strconv.ParseFloat(refS, 64); err != nil {
				return fmt.Errorf("%s: reference %q: %w", args[0], refS, err)
			}
			if ref > 0 {
				ratio = val / ref
			}
		}
		met := judge(check, val, ratio)
		if met == "no" {
			misses++
		}
		ratioS := "-"
		if !math.IsNaN(ratio) {
			ratioS = fmt.Sprintf("%.2fx", ratio)
		}
		refCell := "-"
		if !math.IsNaN(ref) {
			refCell = format(ref, unit)
		}
		cells := []string{id, what, refName, refCell, format(val, unit), ratioS, target, met}
		for i, c := range cells {
			cells[i] = strings.ReplaceAll(c, "|", `\|`) // a pipe in a cell, even in code, ends it
		}
		fmt.Printf("| %s |\n", strings.Join(cells, " | "))
	}
	if err := sc.Err(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "targets missed: %d\n", misses)
	return nil
}

// judge says whether a value meets its check: "yes", "no" or "-".
func judge(check string, val, ratio float64) string {
	if check == "-" || check == "" {
		return "-"
	}
	for _, op := range []string{"<=", "==", "<"} {
		lhs, rhs, ok := strings.Cut(check, op)
		if !ok {
			continue
		}
		limit, err := strconv.ParseFloat(rhs, 64)
		if err != nil {
			return "?"
		}
		x := val
		if lhs == "ratio" {
			x = ratio
		}
		if math.IsNaN(x) {
			return "?"
		}
		var good bool
		switch op {
		case "<=":
			good = x <= limit
		case "==":
			good = x == limit
		case "<":
			good = x < limit
		}
		if good {
			return "yes"
		}
		return "no"
	}
	return "?"
}

// format writes a value in its unit for people.
func format(v float64, unit string) string {
	switch unit {
	case "ms":
		switch {
		case v >= 10000:
			return fmt.Sprintf("%.1f s", v/1000)
		case v >= 1000:
			return fmt.Sprintf("%.2f s", v/1000)
		case v >= 100:
			return fmt.Sprintf("%.0f ms", v)
		case v >= 10:
			return fmt.Sprintf("%.1f ms", v)
		}
		return fmt.Sprintf("%.2f ms", v)
	case "KB":
		if v >= 1024 {
			return fmt.Sprintf("%.1f MiB", v/1024)
		}
		return fmt.Sprintf("%.0f KiB", v)
	case "B":
		switch {
		case v >= 1<<30:
			return fmt.Sprintf("%.2f GiB", v/(1<<30))
		case v >= 1<<20:
			return fmt.Sprintf("%.1f MiB", v/(1<<20))
		case v >= 1<<10:
			return fmt.Sprintf("%.1f KiB", v/(1<<10))
		}
		return fmt.Sprintf("%.0f B", v)
	case "x":
		return fmt.Sprintf("%.2fx", v)
	case "":
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64) + " " + unit
}
