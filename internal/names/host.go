package names

import (
	"fmt"
	"net/netip"
	"strings"
)

// MaxHost is the longest host name DNS allows (without the final dot).
const MaxHost = 253

// CheckHost returns an error naming the value, what is wrong with it and
// the fix, unless host is a host name the front door may route
// (docs/routing.md): a lowercase DNS name of at least two labels, each 1
// to 63 of a-z, 0-9 and '-' that neither starts nor ends with '-', 253
// characters at most; no IP address, no wildcard, no port, no final dot.
func CheckHost(host string) error {
	bad := func(why string) error {
		return fmt.Errorf("invalid host name %q: %s", host, why)
	}
	switch {
	case host == "":
		return bad("it is empty: give a name such as www.example.com")
	case strings.ContainsAny(host, "*"):
		return bad("wildcards are not routed: add each name (www.example.com, api.example.com), or set a base domain in server.json for default names")
	case strings.Contains(host, "://") || strings.ContainsAny(host, "/"):
		return bad("give the host name alone, without a scheme or a path (www.example.com)")
	case strings.Contains(host, ":") && !isIPv6(host):
		return bad("give the host name without a port: the front door serves ports 80 and 443")
	case isIP(host):
		return bad("an IP address is not a host name: the server's bare address is served to the default app (server.json proxy.default_app)")
	case strings.HasSuffix(host, "."):
		return bad("leave out the final dot (" + strings.TrimSuffix(host, ".") + ")")
	case len(host) > MaxHost:
		return bad(fmt.Sprintf("%d characters, DNS allows %d at most", len(host), MaxHost))
	case strings.ToLower(host) != host:
		return bad("use lowercase (" + strings.ToLower(host) + ")")
	}
	labels := strings.Split(host, ".")
	if len(labels) < 2 {
		return bad("give a full name with its domain (" + host + ".example.com), not a single label")
	}
	for _, l := range labels {
		if err := checkLabel(l); err != "" {
			return bad(fmt.Sprintf("label %q %s", l, err))
		}
	}
	if tld := labels[len(labels)-1]; allDigits(tld) {
		return bad("the last label is all digits, which no top-level domain is")
	}
	return nil
}

// checkLabel returns what is wrong with one label of a host name ("": nothing).
func checkLabel(l string) string {
	switch {
	case l == "":
		return "is empty: two dots in a row, or a dot at the start"
	case len(l) > 63:
		return fmt.Sprintf("has %d characters, DNS allows 63 at most", len(l))
	case l[0] == '-' || l[len(l)-1] == '-':
		return "starts or ends with '-'"
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Sprintf("has %q: use a-z, 0-9 and '-' (an internationalized name in its xn-- form)", string(rune(c)))
		}
	}
	return ""
}

func isIP(h string) bool {
	_, err := netip.ParseAddr(strings.Trim(h, "[]"))
	return err == nil
}

func isIPv6(h string) bool {
	a, err := netip.ParseAddr(strings.Trim(h, "[]"))
	return err == nil && a.Is6()
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
