package shellquote

import "testing"

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"deploy":         "deploy",
		"841bc9a0e2f1":   "841bc9a0e2f1",
		"/var/cloud":     "/var/cloud",
		"":               "''",
		"a b":            "'a b'",
		"it's":           `'it'\''s'`,
		"$(rm -rf /)":    "'$(rm -rf /)'",
		"--timeout=15m0": "--timeout=15m0",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
	if got := Join([]string{"deploy", "my app", "x"}); got != "deploy 'my app' x" {
		t.Errorf("Join = %s", got)
	}
}
