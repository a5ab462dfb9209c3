package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// gentreeCmd writes an app-like tree of about -size bytes of file content
// under DIR (which must not exist or be empty). The same size and seed give
// the same tree, byte for byte.
//
// The shape is what an app with its dependencies looks like: most files are
// small (80%: 64 B to 16 KiB), some medium (18%: up to 256 KiB), a few
// large (2%: up to 4 MiB), about 46 KiB on average; 100 files to a folder,
// two levels deep.
// Content, in turn: random bytes (images, minified or compiled assets: zstd
// cannot shrink them), text made of a vocabulary of identifiers (source
// code: zstd -3 shrinks it about 3x), and repetitive lines (logs, lock
// files, fixtures: 10x and more).
func gentreeCmd(args []string) error {
	fs := flag.NewFlagSet("gentree", flag.ExitOnError)
	sizeFlag := fs.String("size", "10M", "bytes of file content (K, M, G suffixes)")
	seed := fs.Uint64("seed", 1, "seed of the generator")
	fs.Parse(args)
	if fs.NArg() != 1 {
		return errors.New("usage: jebench gentree -size SIZE [-seed N] DIR")
	}
	size, err := parseSize(*sizeFlag)
	if err != nil {
		return err
	}
	dir := fs.Arg(0)
	if des, err := os.ReadDir(dir); err == nil && len(des) > 0 {
		return fmt.Errorf("%s is not empty", dir)
	}
	files, err := gentree(dir, size, *seed)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "gentree: %s: %d files, %d bytes\n", dir, files, size)
	return nil
}

var vocabulary = []string{
	"const", "function", "return", "import", "export", "default", "var", "let", "if", "else", "for", "while",
	"this", "value", "render", "props", "state", "async", "await", "null", "undefined", "true", "false",
	"=>", "{", "}", "(", ")", "[", "]", ";\n", ",", ".", "=", "===", "+", "-", "*", "&&", "||", "\n\t", "\n\t\t",
	"module", "require", "exports", "prototype", "length", "push", "map", "filter", "reduce", "Object", "Array",
	"String", "Number", "Promise", "resolve", "reject", "error", "options", "config", "callback", "index",
	"result", "data", "key", "name", "type", "node", "element", "children", "parent", "event", "handler",
}

func gentree(dir string, total int64, seed uint64) (int, error) {
	rng := rand.New(rand.NewPCG(seed, seed*0x9e3779b97f4a7c15+1))
	var key [32]byte
	for i := range key {
		key[i] = byte(rng.Uint32())
	}
	noise := rand.NewChaCha8(key)
	buf := make([]byte, 0, 4<<20)
	var written int64
	i := 0
	for ; written < total; i++ {
		size := fileSize(rng)
		if left := total - written; int64(size) > left {
			size = int(left)
		}
		buf = buf[:0]
		ext := ".bin"
		switch i % 3 {
		case 0:
			buf = buf[:size]
			noise.Read(buf)
		case 1:
			ext = ".js"
			for len(buf) < size {
				buf = append(buf, vocabulary[rng.IntN(len(vocabulary))]...)
				buf = append(buf, ' ')
			}
		default:
			ext = ".log"
			for n := 0; len(buf) < size; n++ {
				buf = append(buf, "2026-11-22T05:00:00Z request id="...)
				buf = strconv.AppendInt(buf, int64(n), 10)
				buf = append(buf, " status=200 path=/api/items/"...)
				buf = strconv.AppendInt(buf, int64(rng.IntN(1000)), 10)
				buf = append(buf, '\n')
			}
		}
		buf = buf[:size]
		p := filepath.Join(dir, fmt.Sprintf("d%03d", i/1000), fmt.Sprintf("s%d", i/100%10), fmt.Sprintf("f%06d%s", i, ext))
		if i%100 == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return i, err
			}
		}
		mode := os.FileMode(0o644)
		if i%50 == 7 {
			mode = 0o755
		}
		if err := os.WriteFile(p, buf, mode); err != nil {
			return i, err
		}
		written += int64(size)
	}
	return i, nil
}

// fileSize draws a size, log-uniform within its class.
func fileSize(rng *rand.Rand) int {
	logUniform := func(lo, hi float64) int {
		return int(math.Exp(math.Log(lo) + rng.Float64()*(math.Log(hi)-math.Log(lo))))
	}
	switch r := rng.IntN(100); {
	case r < 80:
		return logUniform(64, 16<<10)
	case r < 98:
		return logUniform(16<<10, 256<<10)
	default:
		return logUniform(256<<10, 4<<20)
	}
}
