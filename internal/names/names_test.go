package names

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"myapp", true},
		{"a", true},
		{"0day", true},
		{"my-app-2", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"-app", false},
		{"My", false},
		{"a/b", false},
		{"..", false},
		{"a.b", false},
		{"a b", false},
		{"café", false},
		{"app\n", false},
	} {
		if err := CheckApp(tc.name); (err == nil) != tc.ok {
			t.Errorf("CheckApp(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err := CheckEnv(tc.name); (err == nil) != tc.ok {
			t.Errorf("CheckEnv(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if CheckApp("sys") == nil || CheckEnv("sys") != nil {
		t.Error("app name sys must be refused, env name sys allowed")
	}
}

func TestVersion(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"841bc9a0e2f1", true},
		{"841BC9A0E2F1", false},
		{"841bc9a0e2f", false},
		{"841bc9a0e2f1a", false},
		{"../../etc/pa", false},
		{"", false},
	} {
		if err := CheckVersion(tc.id); (err == nil) != tc.ok {
			t.Errorf("CheckVersion(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
	}
}

// The loops say exactly what the documented regular expressions say.
func TestLoopsMatchRegexps(t *testing.T) {
	nameRE := regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	versionRE := regexp.MustCompile(`^[0-9a-f]{12}$`)
	alphabet := []byte("az09-_.A/ é")
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, r.IntN(70))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		s := string(b)
		if isName(s) != nameRE.MatchString(s) {
			t.Errorf("isName(%q) = %v", s, isName(s))
		}
		if isVersion(s) != versionRE.MatchString(s) {
			t.Errorf("isVersion(%q) = %v", s, isVersion(s))
		}
	}
	for _, s := range []string{"a", strings.Repeat("a", 63), strings.Repeat("a", 64), "0123456789ab", "-a"} {
		if isName(s) != nameRE.MatchString(s) || isVersion(s) != versionRE.MatchString(s) {
			t.Errorf("%q: loops and regexps disagree", s)
		}
	}
}
