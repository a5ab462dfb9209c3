package names

import (
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
