// Command jebench holds the measuring tools of `make bench` (bench/run.sh):
// things the shell and hyperfine do not do well on their own.
//
//	jebench gentree -size 100M [-seed N] DIR    a deterministic app-like tree
//	jebench rusage [-n N] [-warmup N] [-prefix P] -- CMD ARGS...
//	                                            CPU, peak RSS and disk writes of a child, per run
//	jebench snapshot [-o FILE] DIR              a fingerprint of every inode under DIR
//	jebench proxy -to ADDR -port-file F -stats F
//	                                            a TCP proxy counting the bytes of each connection
//	jebench ab [-n N] -prepare SH -cmd SH ...   commands timed interleaved, round after round
//	jebench hf [-prefix P] FILE.json            hyperfine's results as shell assignments
//	jebench table FILE.tsv                      the results table, with ratios and verdicts
//	jebench freeport                            a free TCP port on 127.0.0.1
//	jebench pagefault [-pages N] [-rounds N]    what the first touch of a fresh page costs
//
// Commands that print figures for the script print shell assignments
// (name=value, one a line) so that run.sh can eval them.
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	args := os.Args[2:]
	var err error
	switch os.Args[1] {
	case "gentree":
		err = gentreeCmd(args)
	case "rusage":
		err = rusageCmd(args)
	case "snapshot":
		err = snapshotCmd(args)
	case "proxy":
		err = proxyCmd(args)
	case "hf":
		err = hfCmd(args)
	case "table":
		err = tableCmd(args)
	case "ab":
		err = abCmd(args)
	case "freeport":
		err = freeportCmd()
	case "pagefault":
		err = pagefaultCmd(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "jebench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: jebench gentree|rusage|snapshot|proxy|ab|hf|table|freeport|pagefault ... (see bench/jebench/main.go)")
	os.Exit(2)
}

// parseSize reads 1500, 64K, 10M, 1G (powers of 1024).
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q: want a number with an optional K, M or G", s)
	}
	return n * mult, nil
}

// assign prints one shell assignment; values are numbers or plain words.
func assign(prefix, name string, v any) {
	switch x := v.(type) {
	case float64:
		fmt.Printf("%s%s=%s\n", prefix, name, strconv.FormatFloat(x, 'f', -1, 64))
	default:
		fmt.Printf("%s%s=%v\n", prefix, name, x)
	}
}

func freeportCmd() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	return nil
}
