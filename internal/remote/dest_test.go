package remote

import (
	"strings"
	"testing"
)

func TestParseDest(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Dest
		err  string
	}{
		{in: "web1", want: Dest{Host: "web1"}},
		{in: "deploy@10.0.0.5", want: Dest{User: "deploy", Host: "10.0.0.5"}},
		{in: "deploy@10.0.0.5:2222", want: Dest{User: "deploy", Host: "10.0.0.5", Port: 2222}},
		{in: "ssh://deploy@web1:2200", want: Dest{User: "deploy", Host: "web1", Port: 2200}},
		{in: "[::1]:2222", want: Dest{Host: "::1", Port: 2222}},
		{in: "root@[fe80::1]", want: Dest{User: "root", Host: "fe80::1"}},
		{in: "::1", want: Dest{Host: "::1"}},
		{in: "", err: "empty"},
		{in: "web1:0", err: "port"},
		{in: "web1:http", err: "port"},
		{in: "web1:70000", err: "port"},
		{in: "@web1", err: "user"},
		{in: "user@", err: "host"},
		{in: "-oProxyCommand=x", err: "'-'"},
		{in: "web1;rm", err: "shell"},
		{in: "web 1", err: "spaces"},
		{in: "[::1", err: "unbalanced"},
	} {
		got, err := ParseDest(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseDest(%q) error = %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDest(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}
