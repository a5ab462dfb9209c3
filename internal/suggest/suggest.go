// Package suggest finds the word a typo was meant to be, for "did you
// mean" in the messages of jepush and jeagent: a misspelt command, a key
// of jecloud.toml.
package suggest

import "strings"

// Nearest returns the word of valid closest to s when it is close enough
// to be a typo (a letter or two off, or another case), else "".
func Nearest(s string, valid []string) string {
	best, bestD := "", 1<<30
	ls := strings.ToLower(s)
	for _, v := range valid {
		d := distance(ls, strings.ToLower(v))
		if d < bestD {
			best, bestD = v, d
		}
	}
	limit := 2
	if len(s) <= 4 {
		limit = 1
	}
	if bestD > limit {
		return ""
	}
	return best
}

// distance is the edit distance of a and b (insertions, deletions,
// substitutions and swaps of neighbours each cost 1).
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
