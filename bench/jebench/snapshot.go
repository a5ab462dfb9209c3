package main

import (
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// snapshotCmd prints a fingerprint of everything under DIR: for each path
// (directories, files, symlinks), its inode, type and mode, size, link
// count, mtime and ctime in nanoseconds, and a symlink's target. Two
// snapshots are equal only if nothing under DIR was created, removed,
// renamed, written, truncated, chmod-ed or relinked in between. Access
// times are left out (reading a file may set its atime under relatime;
// that is the kernel's bookkeeping, not a write of the program), but are
// fingerprinted separately as atime_sha.
//
// It prints entries=N sha=HEX atime_sha=HEX; -o FILE also writes the
// listing, to diff two snapshots.
func snapshotCmd(args []string) error {
	fset := flag.NewFlagSet("snapshot", flag.ExitOnError)
	out := fset.String("o", "", "also write the listing to `FILE`")
	prefix := fset.String("prefix", "", "prefix of the printed names")
	fset.Parse(args)
	if fset.NArg() != 1 {
		return errors.New("usage: jebench snapshot [-o FILE] DIR")
	}
	var b, atimes strings.Builder
	n := 0
	err := filepath.WalkDir(fset.Arg(0), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(path, &st); err != nil {
			return err
		}
		target := ""
		if d.Type()&fs.ModeSymlink != 0 {
			target, _ = os.Readlink(path)
		}
		fmt.Fprintf(&b, "%s ino=%d mode=%o size=%d nlink=%d mtime=%d.%09d ctime=%d.%09d -> %q\n",
			path, st.Ino, st.Mode, st.Size, st.Nlink, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec, target)
		fmt.Fprintf(&atimes, "%s %d.%09d\n", path, st.Atim.Sec, st.Atim.Nsec)
		n++
		return nil
	})
	if err != nil {
		return err
	}
	if *out != "" {
		if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	assign(*prefix, "entries", n)
	assign(*prefix, "sha", fmt.Sprintf("%x", sha256.Sum256([]byte(b.String())))[:16])
	assign(*prefix, "atime_sha", fmt.Sprintf("%x", sha256.Sum256([]byte(atimes.String())))[:16])
	return nil
}
