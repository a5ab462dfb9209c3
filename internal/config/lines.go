package config

import (
	"bufio"
	"bytes"
	"strings"
)

// The TOML library reports positions of syntax and type errors but not of
// keys it did not decode; these find the line of a key by reading the file
// again. They are for messages only: 0 means "not found".

// keyLine returns the line of key in table ("" for the top level, "env.prod").
func keyLine(data []byte, table, key string) int {
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

// tableLine returns the line of the header [name], or of the first key under it.
func tableLine(data []byte, name string) int {
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
	return keyLine(data, name[:i], name[i+1:])
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
