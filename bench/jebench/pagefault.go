package main

import (
	"flag"
	"fmt"
	"slices"
	"syscall"
	"time"
)

// pagefaultCmd measures what the first touch of a fresh anonymous page
// costs (the page fault and the zeroing): a short-lived process such as
// the idle tick pays it for every page of heap, stack and data it uses, so
// it is the machine's price for a process start, beside /bin/true's. It
// maps -pages pages, writes one byte to each, and prints the median over
// -rounds rounds (fresh mappings each time) as pagefault_us=.
func pagefaultCmd(args []string) error {
	fs := flag.NewFlagSet("pagefault", flag.ExitOnError)
	pages := fs.Int("pages", 1000, "pages touched per round")
	rounds := fs.Int("rounds", 9, "rounds (the median is printed)")
	fs.Parse(args)
	size := *pages * syscall.Getpagesize()
	var per []float64
	for r := 0; r < *rounds; r++ {
		mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
		if err != nil {
			return fmt.Errorf("mmap %d bytes: %w", size, err)
		}
		t0 := time.Now()
		for i := 0; i < size; i += syscall.Getpagesize() {
			mem[i] = 1
		}
		per = append(per, float64(time.Since(t0).Nanoseconds())/1e3/float64(*pages))
		if err := syscall.Munmap(mem); err != nil {
			return err
		}
	}
	slices.Sort(per)
	fmt.Printf("pagefault_us=%.2f\n", per[len(per)/2])
	return nil
}
