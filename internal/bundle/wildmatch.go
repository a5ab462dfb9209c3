package bundle

import "strings"

// wildmatch reports whether text (a '/'-separated path) matches a gitignore
// glob, with the semantics of git's wildmatch in WM_PATHNAME mode:
//
//   - '*' matches any run of bytes except '/', '?' any one byte except '/';
//   - "[...]" is a bracket expression: ranges, "!" or "^" to negate, '\' to
//     escape, POSIX classes like "[:digit:]"; it never matches '/';
//   - "**" as a whole path element ("**/x", "x/**", "x/**/y") matches any
//     number of path elements; elsewhere it is a plain '*';
//   - '\' makes the next byte literal.
//
// A malformed bracket expression makes the pattern match nothing, as in git.
func wildmatch(pattern, text string) bool {
	return wild(pattern, text, true) == wmMatch
}

type wmResult int8

const (
	wmMatch   wmResult = iota
	wmNoMatch          // try the next position of an enclosing '*'
	// wmAbortAll: no later position of any enclosing '*' can match (the text
	// ran out, or the pattern is malformed).
	wmAbortAll
	// wmAbortToStarStar: a single '*' would have to cross a '/'; only an
	// enclosing "**" may try further.
	wmAbortToStarStar
)

// wild matches pattern against text. elemStart tells whether the pattern
// byte before p[0] was a '/' (or p starts the pattern), which decides
// whether a "**" at p[0] is a whole path element.
func wild(p, text string, elemStart bool) wmResult {
	for len(p) > 0 {
		c := p[0]
		if len(text) == 0 && c != '*' {
			return wmAbortAll
		}
		switch c {
		case '*':
			return star(p, text, elemStart)
		case '?':
			if text[0] == '/' {
				return wmNoMatch
			}
			p, text, elemStart = p[1:], text[1:], false
		case '[':
			ok, rest, valid := bracket(p, text[0])
			if !valid {
				return wmAbortAll
			}
			if !ok || text[0] == '/' {
				return wmNoMatch
			}
			p, text, elemStart = rest, text[1:], false
		case '\\':
			if len(p) < 2 { // a trailing backslash matches nothing
				return wmNoMatch
			}
			if text[0] != p[1] {
				return wmNoMatch
			}
			p, text, elemStart = p[2:], text[1:], p[1] == '/'
		default:
			if text[0] != c {
				return wmNoMatch
			}
			p, text, elemStart = p[1:], text[1:], c == '/'
		}
	}
	if len(text) > 0 {
		return wmNoMatch
	}
	return wmMatch
}

// star matches a pattern that starts with one or more '*'.
func star(p, text string, elemStart bool) wmResult {
	n := 1
	for n < len(p) && p[n] == '*' {
		n++
	}
	rest := p[n:]
	crossSlash := false
	if n >= 2 && elemStart && (rest == "" || rest[0] == '/' || strings.HasPrefix(rest, `\/`)) {
		// "**/" may also match no directory at all: "a/**/b" matches "a/b".
		if rest != "" && rest[0] == '/' && wild(rest[1:], text, true) == wmMatch {
			return wmMatch
		}
		crossSlash = true
	}
	switch {
	case rest == "":
		if !crossSlash && strings.IndexByte(text, '/') >= 0 {
			return wmAbortToStarStar
		}
		return wmMatch
	case !crossSlash && rest[0] == '/':
		// "*/": the star takes the rest of this path element.
		i := strings.IndexByte(text, '/')
		if i < 0 {
			return wmAbortAll
		}
		return wild(rest[1:], text[i+1:], true)
	}
	for i := 0; i < len(text); i++ {
		// Skip ahead when the star is followed by a literal byte.
		if lit := rest[0]; !isGlobSpecial(lit) && text[i] != lit {
			if !crossSlash && text[i] == '/' {
				return wmAbortToStarStar
			}
			continue
		}
		switch r := wild(rest, text[i:], false); {
		case r == wmMatch, r == wmAbortAll:
			return r
		case r == wmAbortToStarStar && !crossSlash:
			return r
		}
		if !crossSlash && text[i] == '/' {
			return wmAbortToStarStar
		}
	}
	return wmAbortAll
}

func isGlobSpecial(c byte) bool {
	return c == '*' || c == '?' || c == '[' || c == '\\'
}

// bracket matches c against the bracket expression at the start of p (p[0] is
// '['). It returns the pattern after the closing ']', and valid=false for an
// unterminated expression or an unknown character class.
func bracket(p string, c byte) (matched bool, rest string, valid bool) {
	i := 1
	negate := false
	if i < len(p) && (p[i] == '!' || p[i] == '^') {
		negate = true
		i++
	}
	var prev byte // last single byte seen, the start of a possible range
	for first := true; ; first = false {
		if i >= len(p) {
			return false, "", false
		}
		b := p[i]
		switch {
		case b == ']' && !first:
			return matched != negate, p[i+1:], true
		case b == '\\':
			i++
			if i >= len(p) {
				return false, "", false
			}
			b = p[i]
			matched = matched || c == b
			prev = b
		case b == '-' && prev != 0 && i+1 < len(p) && p[i+1] != ']':
			i++
			hi := p[i]
			if hi == '\\' {
				i++
				if i >= len(p) {
					return false, "", false
				}
				hi = p[i]
			}
			matched = matched || (prev <= c && c <= hi)
			prev = 0
		case b == '[' && i+1 < len(p) && p[i+1] == ':':
			end := strings.IndexByte(p[i+2:], ']')
			if end < 0 {
				return false, "", false
			}
			close := i + 2 + end // index of ']'
			if end < 1 || p[close-1] != ':' {
				// Not a class after all: a literal '['.
				matched = matched || c == '['
				prev = '['
				break
			}
			in, known := inClass(p[i+2:close-1], c)
			if !known {
				return false, "", false
			}
			matched = matched || in
			prev = 0
			i = close
		default:
			matched = matched || c == b
			prev = b
		}
		i++
	}
}

// inClass reports whether c is in the POSIX class name (ASCII only).
func inClass(name string, c byte) (in, known bool) {
	lower := 'a' <= c && c <= 'z'
	upper := 'A' <= c && c <= 'Z'
	digit := '0' <= c && c <= '9'
	switch name {
	case "alnum":
		return lower || upper || digit, true
	case "alpha":
		return lower || upper, true
	case "blank":
		return c == ' ' || c == '\t', true
	case "cntrl":
		return c < 0x20 || c == 0x7f, true
	case "digit":
		return digit, true
	case "graph":
		return 0x21 <= c && c <= 0x7e, true
	case "lower":
		return lower, true
	case "print":
		return 0x20 <= c && c <= 0x7e, true
	case "punct":
		return 0x21 <= c && c <= 0x7e && !lower && !upper && !digit, true
	case "space":
		return c == ' ' || ('\t' <= c && c <= '\r'), true
	case "upper":
		return upper, true
	case "xdigit":
		return digit || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F'), true
	}
	return false, false
}
