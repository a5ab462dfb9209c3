package bundle

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Hand-built tar blocks, for what archive/tar's writer will not write:
// PAX records that override a header, huge extended headers, GNU types,
// bad checksums.

// ustar returns one USTAR header block.
func ustar(name string, typ byte, size int64, link string) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], "00000000000\x00")
	b[156] = typ
	copy(b[157:257], link)
	copy(b[257:265], "ustar\x0000")
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// gnuSparse returns an old-GNU sparse header ('S'): one byte of data at
// offset 0 of a file of realsize bytes, then the data block.
func gnuSparse(name string, realsize int64) []byte {
	b := ustar(name, 'S', 1, "")
	copy(b[257:265], "ustar  \x00") // the GNU magic
	copy(b[386:398], fmt.Sprintf("%011o\x00", 0))
	copy(b[398:410], fmt.Sprintf("%011o\x00", 1))
	copy(b[483:495], fmt.Sprintf("%011o\x00", realsize))
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return append(b, body([]byte("x"))...)
}

// body pads data to whole blocks.
func body(data []byte) []byte {
	return append(data, make([]byte, (512-len(data)%512)%512)...)
}

// pax returns an extended header ('x') with the records, then its body.
func pax(records ...string) []byte {
	var rec bytes.Buffer
	for i := 0; i+1 < len(records); i += 2 {
		kv := " " + records[i] + "=" + records[i+1] + "\n"
		n := len(kv) + 1
		for len(strconv.Itoa(n))+len(kv) != n {
			n++
		}
		fmt.Fprintf(&rec, "%d%s", n, kv)
	}
	return append(ustar("PaxHeaders/x", 'x', int64(rec.Len()), ""), body(rec.Bytes())...)
}

// gnuLong returns a GNU long name ('L') or long link ('K') entry.
func gnuLong(typ byte, name string) []byte {
	data := append([]byte(name), 0)
	return append(ustar("././@LongLink", typ, int64(len(data)), ""), body(data)...)
}

// rawTar joins blocks and the end-of-archive trailer.
func rawTar(parts ...[]byte) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		b.Write(p)
	}
	b.Write(make([]byte, 1024))
	return b.Bytes()
}

func file(name string, data string) []byte {
	return append(ustar(name, '0', int64(len(data)), ""), body([]byte(data))...)
}

// TestHostileRaw: what a hostile or broken client could send that
// archive/tar would not write. Each is refused by Inspect and Extract
// alike, at once, with nothing written outside the directory.
func TestHostileRaw(t *testing.T) {
	badSum := ustar("a", '0', 0, "")
	badSum[148] = '7'
	refused := 0
	cases := []struct {
		name string
		tar  []byte
		want string // in the error
		big  bool   // ErrTooLarge
	}{
		{"pax path overrides a harmless name", rawTar(pax("path", "../evil"), file("harmless", "x")), `"../evil" in bundle: path contains a ".." element`, false},
		{"pax path absolute", rawTar(pax("path", "/etc/cron.d/evil"), file("harmless", "x")), "absolute path", false},
		{"pax linkpath overrides a harmless target", rawTar(pax("linkpath", "/etc/shadow"), ustar("l", '2', 0, "harmless")), "the target is absolute", false},
		{"pax linkpath escapes", rawTar(pax("linkpath", "../../.."), ustar("l", '2', 0, "harmless")), "leads outside", false},
		{"pax size of 1 TiB", rawTar(pax("size", "1099511627776"), file("big", "x")), "MaxFileBytes", true},
		{"pax header of 2 MiB", rawTar(pax("comment", strings.Repeat("x", 2<<20)), file("a", "x")), "header field too long", false},
		{"gnu long name of 2 MiB", rawTar(gnuLong('L', strings.Repeat("a/", 1<<20)), file("a", "x")), "header field too long", false},
		{"gnu long name over 4096", rawTar(gnuLong('L', strings.Repeat("d", 200)+"/"+strings.Repeat("x/", 2100)+"x"), file("a", "x")), "longer than 4096", false},
		{"gnu long name with ..", rawTar(gnuLong('L', "a/../../evil"), file("a", "x")), `".." element`, false},
		{"gnu long link absolute", rawTar(gnuLong('K', "/etc/passwd"), ustar("l", '2', 0, "x")), "the target is absolute", false},
		{"gnu sparse file of 1 TiB", rawTar(gnuSparse("s", 1<<40)), "unsupported entry type 'S'", false},
		{"pax sparse file of 1 TiB", rawTar(pax("GNU.sparse.major", "1", "GNU.sparse.minor", "0", "GNU.sparse.name", "s", "GNU.sparse.realsize", "1099511627776"),
			append(ustar("s", '0', 513, ""), body(append(body([]byte("1\n0\n1\n")), 'x'))...)), "sparse files are not allowed", false},
		{"gnu volume header", rawTar(ustar("vol", 'V', 0, "")), "", false},
		{"bad checksum", rawTar(badSum), "corrupt tar stream", false},
		{"hard link", rawTar(file("a", "x"), ustar("b", '1', 0, "a")), "hard links are not allowed", false},
		{"char device", rawTar(ustar("tty", '3', 0, "")), "device files are not allowed", false},
		{"fifo", rawTar(ustar("p", '6', 0, "")), "FIFOs are not allowed", false},
	}
	defer func() {
		t.Logf("summary: hand-built hostile tar streams: %d cases, %d refused alike by Inspect and Extract, nothing written outside", len(cases), refused)
	}()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := compress(tc.tar)
			start := time.Now()
			_, ierr := Inspect(bytes.NewReader(data), Limits{})
			parent := t.TempDir()
			dst := filepath.Join(parent, "dst")
			os.Mkdir(dst, 0o755)
			_, xerr := Extract(bytes.NewReader(data), dst, Limits{})
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v to refuse", d)
			}
			if ierr == nil || xerr == nil {
				t.Fatalf("Inspect: %v, Extract: %v; want both to refuse", ierr, xerr)
			}
			if ierr.Error() != xerr.Error() {
				t.Errorf("Inspect and Extract disagree:\n%v\n%v", ierr, xerr)
			}
			if !strings.Contains(xerr.Error(), tc.want) || tc.big != errors.Is(xerr, ErrTooLarge) {
				t.Errorf("error %q, want it to contain %q (ErrTooLarge: %v)", xerr, tc.want, tc.big)
			}
			t.Log(xerr)
			assertOnly(t, parent, "dst")
			assertInside(t, dst)
			if !t.Failed() {
				refused++
			}
		})
	}
}

// TestXattrsNotApplied: extended attributes a bundle carries in PAX
// records (file capabilities, SELinux labels) are not applied.
func TestXattrsNotApplied(t *testing.T) {
	// security.capability with cap_setuid+ep, as setcap writes it.
	capability := "\x01\x00\x00\x02\x80\x00\x00\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	data := compress(rawTar(pax("SCHILY.xattr.security.capability", capability, "SCHILY.xattr.user.note", "x"), file("tool", "#!/bin/sh\n")))
	dst := t.TempDir()
	if _, err := Extract(bytes.NewReader(data), dst, Limits{}); err != nil {
		t.Fatal(err)
	}
	for _, attr := range []string{"security.capability", "user.note"} {
		buf := make([]byte, 64)
		if n, err := unix.Getxattr(filepath.Join(dst, "tool"), attr, buf); err == nil {
			t.Errorf("%s applied from the bundle: %q", attr, buf[:n])
		}
	}
}
