// Package shellquote quotes words for a POSIX shell: the command lines
// jepush sends over SSH and the ssh command git runs for the agent. It is
// its own package so that jeagent need not link the SSH client to quote a
// path.
package shellquote

import "strings"

// Quote quotes s for a POSIX shell: as it is when it is plainly safe,
// else in single quotes.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,@%+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes each of argv and joins them with spaces.
func Join(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}
