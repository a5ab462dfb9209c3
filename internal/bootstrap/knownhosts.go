package bootstrap

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// RecordHostKeys writes host's keys into the known_hosts file at path,
// replacing the lines of that exact host (an address EC2 hands out again
// belonged to another machine before). Other lines are kept as they are.
func RecordHostKeys(path, host string, keys []ssh.PublicKey, comment string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	norm := knownhosts.Normalize(host)
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(old))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) >= 2 && !strings.HasPrefix(f[0], "#") && !strings.HasPrefix(f[0], "@") && f[0] == norm {
			continue
		}
		out.WriteString(line + "\n")
	}
	for _, k := range keys {
		out.WriteString(knownhosts.Line([]string{norm}, k) + " " + comment + "\n")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, out.Bytes(), 0o600)
}
