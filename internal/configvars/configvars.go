// Package configvars keeps an app environment's config vars (its secrets:
// API keys, passwords) in APP/ENV/config.env, outside the state JSON,
// readable only by root and the app's own group, in the format of systemd's
// EnvironmentFile= so the app's units read it directly.
package configvars

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/state"
)

// FileName is the file's name in the app environment's directory.
const FileName = "config.env"

// isName reports whether k matches ^[A-Za-z_][A-Za-z0-9_]{0,127}$ (a loop:
// a regular expression compiled at start-up costs every jeagent run).
func isName(k string) bool {
	if len(k) == 0 || len(k) > 128 || k[0] >= '0' && k[0] <= '9' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// CheckName refuses names the app could not read, or that JeCloud sets itself.
func CheckName(k string) error {
	switch {
	case !isName(k):
		return fmt.Errorf("config var name %q: use letters, digits and _, not starting with a digit", k)
	case k == "PORT" || k == "PATH" || k == "HOME" || strings.HasPrefix(k, "JECLOUD_") || strings.HasPrefix(k, "LISTEN_"):
		return fmt.Errorf("config var name %q is set by JeCloud itself: choose another name", k)
	}
	return nil
}

// Read returns the vars in path (none if the file is missing).
func Read(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	return parse(path, data)
}

// Write writes vars to path crash-safely, mode 0640, owner root and group
// gid (the app's group; -1 keeps root's).
func Write(path string, vars map[string]string, gid int) error {
	return Save(path, "Config vars, written by jeagent: use `jepush config:set`. Readable by root and the app only.", vars, 0o640, gid)
}

// Save writes vars to path crash-safely in the same format, under a
// comment line saying what they are, with mode perm, owner root and group
// gid (-1 keeps root's).
func Save(path, comment string, vars map[string]string, perm os.FileMode, gid int) error {
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("# " + comment + "\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, quote(vars[k]))
	}
	if err := state.MkdirAppEnv(filepath.Dir(path)); err != nil {
		return err
	}
	return atomicfile.WriteFileOwned(path, b.Bytes(), perm, 0, gid)
}

// quote writes a value as systemd reads it from an EnvironmentFile: in
// double quotes, with \, ", $ and ` escaped; newlines stay as they are.
func quote(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`, "`", "\\`")
	return `"` + r.Replace(v) + `"`
}

// parse reads what Write wrote (and simple hand-written KEY=value lines).
func parse(path string, data []byte) (map[string]string, error) {
	vars := map[string]string{}
	r := bufio.NewReader(bytes.NewReader(data))
	line := 0
	for {
		text, err := r.ReadString('\n')
		if text == "" && err != nil {
			return vars, nil
		}
		line++
		start := line
		t := strings.TrimSpace(text)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok || !isName(k) {
			return nil, fmt.Errorf("%s:%d: want KEY=VALUE, got %q", path, line, t)
		}
		if !strings.HasPrefix(v, `"`) {
			vars[k] = v
			continue
		}
		// A quoted value may span lines.
		raw := strings.TrimPrefix(strings.TrimLeft(text, " \t")[len(k)+1:], `"`)
		var out strings.Builder
		for closed := false; !closed; {
			for i := 0; i < len(raw); i++ {
				switch c := raw[i]; {
				case c == '\\' && i+1 < len(raw):
					i++
					out.WriteByte(raw[i])
				case c == '"':
					closed = true
					i = len(raw)
				default:
					out.WriteByte(c)
				}
			}
			if closed {
				break
			}
			next, err := r.ReadString('\n')
			if next == "" && err != nil {
				return nil, fmt.Errorf("%s:%d: the quoted value of %s never ends", path, start, k)
			}
			line++
			raw = next
		}
		vars[k] = out.String()
	}
}
