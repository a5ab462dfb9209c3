package names

import (
	"strings"
	"testing"
)

func TestCheckHost(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	// 4 labels of 63 and one of 1 with 4 dots: 257; trim to 253.
	max := long63 + "." + long63 + "." + long63 + "." + strings.Repeat("b", 61)
	for _, tc := range []struct {
		host string
		want string // "" for valid; else a part of the error
	}{
		{"example.com", ""},
		{"www.example.com", ""},
		{"shop-prod.apps.example.com", ""},
		{"a.b", ""},
		{"xn--caf-dma.example", ""},
		{"1.example.com", ""},
		{"0-9.example.com", ""},
		{long63 + ".com", ""},
		{max, ""},
		{max + "b", "254 characters, DNS allows 253"},
		{strings.Repeat("a", 64) + ".com", "has 64 characters, DNS allows 63"},
		{"", "it is empty"},
		{"localhost", "not a single label"},
		{"example", "not a single label"},
		{"WWW.example.com", `use lowercase (www.example.com)`},
		{"*.example.com", "wildcards are not routed"},
		{"192.168.1.10", "an IP address is not a host name"},
		{"::1", "an IP address is not a host name"},
		{"[2001:db8::1]", "an IP address is not a host name"},
		{"1.2.3.4.5", "the last label is all digits"},
		{"example.com.", "leave out the final dot (example.com)"},
		{"example.com:8080", "without a port"},
		{"https://example.com", "without a scheme or a path"},
		{"example.com/x", "without a scheme or a path"},
		{"-a.example.com", `label "-a" starts or ends with '-'`},
		{"a-.example.com", `label "a-" starts or ends with '-'`},
		{"a..example.com", "two dots in a row"},
		{".example.com", "two dots in a row, or a dot at the start"},
		{"a_b.example.com", `label "a_b" has "_"`},
		{"café.example", "xn-- form"},
		{"a b.example.com", `has " "`},
		{"a\n.example.com", `has "\n"`},
		{"a;rm -rf.example.com", `has ";"`},
		{"-oproxycommand=x.com", "starts or ends with '-'"},
	} {
		err := CheckHost(tc.host)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckHost(%q) = %v, want ok", tc.host, err)
		case tc.want != "" && err == nil:
			t.Errorf("CheckHost(%q) = ok, want an error with %q", tc.host, tc.want)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("CheckHost(%q) = %v, want %q in it", tc.host, err, tc.want)
		case err != nil && !strings.Contains(err.Error(), "invalid host name "+strconvQuote(tc.host)):
			t.Errorf("CheckHost(%q) = %v: does not name the value", tc.host, err)
		}
	}
}

func strconvQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}
