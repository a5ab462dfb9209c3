// Package tomlpos finds where a key or a table is in a TOML file, for
// messages that name file:line: the TOML library reports the positions of
// syntax and type errors, not those of keys it decoded or did not.
package tomlpos

import (
	"bufio"
	"bytes"
	"strings"
)

// The functions read the file again and are for messages only: 0 means
// "not found".

// KeyLine returns the line of key in table ("" for the top level, "env.prod").
func KeyLine(data []byte, table, key string) int {
	want := key
	if table != "" {
		want = table + "." + key
	}
	cur := ""
	line := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if h, ok := header(s); ok {
			cur = h
			continue
		}
		i := strings.IndexByte(s, '=')
		if i <= 0 || strings.HasPrefix(s, "#") {
			continue
		}
		full := normKey(s[:i])
		if cur != "" {
			full = cur + "." + full
		}
		if full == want {
			return line
		}
	}
	return 0
}

// TableLine returns the line of the header [name], or of the first key under it.
func TableLine(data []byte, name string) int {
	line := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line++
		if h, ok := header(strings.TrimSpace(sc.Text())); ok && h == name {
			return line
		}
	}
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return 0
	}
	return KeyLine(data, name[:i], name[i+1:])
}

// header returns the name of a [table] or [[array]] header line, quotes and
// spaces removed.
func header(s string) (string, bool) {
	if !strings.HasPrefix(s, "[") {
		return "", false
	}
	s = strings.TrimLeft(s, "[")
	i := strings.IndexByte(s, ']')
	if i < 0 {
		return "", false
	}
	return normKey(s[:i]), true
}

func normKey(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return strings.Join(parts, ".")
}
