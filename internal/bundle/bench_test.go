package bundle

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// benchTree writes about 2,000 files and 50 MB under dir: a third random
// (incompressible), a third text-like, a third very repetitive, with sizes
// from a few bytes to 1 MB. It returns the number of content bytes.
func benchTree(b *testing.B, dir string) int64 {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"const", "function", "return", "import", "export", "var", "let", "if", "else", "for", "while",
		"the", "value", "render", "props", "state", "async", "await", "null", "undefined", "=>", "{", "}", "(", ")", ";\n"}
	var total int64
	buf := make([]byte, 0, 1<<20)
	for i := range 2000 {
		size := 1 + rng.IntN(32<<10) // most files are small...
		if i%40 == 0 {
			size = 512<<10 + rng.IntN(512<<10) // ...a few are large
		}
		buf = buf[:0]
		switch i % 3 {
		case 0:
			for len(buf) < size {
				buf = append(buf, byte(rng.Uint32()))
			}
		case 1:
			for len(buf) < size {
				buf = append(buf, words[rng.IntN(len(words))]...)
				buf = append(buf, ' ')
			}
		default:
			for len(buf) < size {
				buf = append(buf, fmt.Sprintf("line %d of a log file: status=ok\n", len(buf)/64)...)
			}
		}
		buf = buf[:size]
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%50), fmt.Sprintf("s%d", i%7), fmt.Sprintf("file%04d.dat", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(size)
	}
	return total
}

// BenchmarkWrite measures Write on a 2,000-file, 50 MB tree; MB/s counts
// file content. Compare with: tar -C DIR -cf - . | zstd -3 -T0 >/dev/null
func BenchmarkWrite(b *testing.B) {
	dir := b.TempDir()
	total := benchTree(b, dir)
	var out countWriter
	if _, err := Write(dir, io.Discard, WriteOptions{}); err != nil { // warm the page cache
		b.Fatal(err)
	}
	b.SetBytes(total)
	b.ResetTimer()
	for range b.N {
		if _, err := Write(dir, &out, WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(out.n)/float64(b.N)/float64(total), "ratio")
}

// BenchmarkInspect measures reading back the bundle of the same tree.
func BenchmarkInspect(b *testing.B) {
	dir := b.TempDir()
	total := benchTree(b, dir)
	var bundle bytes.Buffer
	if _, err := Write(dir, &bundle, WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	b.ResetTimer()
	for range b.N {
		if _, err := Inspect(bytes.NewReader(bundle.Bytes()), Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHashOnly measures what computing the version ID alone costs: the
// walk, the canonical tar and its SHA-256, without zstd. That is all jepush
// needs to ask a server whether it has the version; compare with
// BenchmarkWrite for what compressing first costs.
func BenchmarkHashOnly(b *testing.B) {
	dir := b.TempDir()
	total := benchTree(b, dir)
	hash := func() string {
		id, err := Hash(dir, WriteOptions{})
		if err != nil {
			b.Fatal(err)
		}
		return id
	}
	want, err := Write(dir, io.Discard, WriteOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if got := hash(); got != want { // the same ID as Write's, and a warm cache
		b.Fatalf("hash-only ID %s, Write's %s", got, want)
	}
	b.SetBytes(total)
	b.ResetTimer()
	for range b.N {
		hash()
	}
}

// BenchmarkExtract measures Extract of the same tree's bundle into a fresh
// directory (no fsync: the agent syncs the filesystem once afterwards).
// Compare with BenchmarkInspect: the agent's verifying step reads the
// bundle once that way before the extracting step reads it again.
func BenchmarkExtract(b *testing.B) {
	dir := b.TempDir()
	total := benchTree(b, dir)
	var bundle bytes.Buffer
	if _, err := Write(dir, &bundle, WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	out := b.TempDir()
	b.SetBytes(total)
	b.ResetTimer()
	for i := range b.N {
		dst := filepath.Join(out, fmt.Sprint(i))
		if err := os.Mkdir(dst, 0o755); err != nil {
			b.Fatal(err)
		}
		if _, err := Extract(bytes.NewReader(bundle.Bytes()), dst, Limits{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := os.RemoveAll(dst); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

var _ io.Writer = (*countWriter)(nil)
