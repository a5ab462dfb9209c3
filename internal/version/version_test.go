package version

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestAsked(t *testing.T) {
	for _, tc := range []struct {
		args          []string
		asked, asJSON bool
	}{
		{[]string{"jepush", "--version"}, true, false},
		{[]string{"jepush", "-v"}, true, false},
		{[]string{"jeagent", "--version", "--json"}, true, true},
		{[]string{"jeagent", "--json", "--version"}, true, true},
		{[]string{"jeagent", "--json"}, false, false},
		{[]string{"jeagent", "status", "--version"}, false, false},
		{[]string{"jepush"}, false, false},
	} {
		asked, asJSON := Asked(tc.args)
		if asked != tc.asked || asJSON != tc.asJSON {
			t.Errorf("Asked(%q) = %v, %v; want %v, %v", tc.args, asked, asJSON, tc.asked, tc.asJSON)
		}
	}
}

func TestGetStamped(t *testing.T) {
	Version, Commit = "0.1.0+git7.0123456789abcdef", "0123456789abcdef"
	defer func() { Version, Commit = "", "" }()
	i := Get("jepush")
	if i.Version != "0.1.0+git7.0123456789abcdef" || i.Commit != "0123456789ab" || i.Protocol != Protocol {
		t.Fatalf("Get = %+v", i)
	}
	if s := i.String(); !strings.HasPrefix(s, "jepush 0.1.0+git7.0123456789abcdef (commit 0123456789ab") || !strings.Contains(s, "protocol 1") {
		t.Errorf("String = %q", s)
	}
	var back Info
	if err := json.Unmarshal([]byte(i.JSON()), &back); err != nil || back != i {
		t.Errorf("JSON %s read back as %+v, %v", i.JSON(), back, err)
	}
}

func TestProtocol(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want int
	}{
		{ProtocolLine() + "web/prod: version x is here\n", Protocol},
		{"web/prod: version x is here\n", 0}, // an agent older than protocol 1
		{"jeagent-protocol: 7\n", 7},
		{"jeagent-protocol: nonsense\n", 0},
	} {
		if got := ParseProtocol(tc.out); got != tc.want {
			t.Errorf("ParseProtocol(%q) = %d, want %d", tc.out, got, tc.want)
		}
	}
	if w := Mismatch("web1", Protocol); w != "" {
		t.Errorf("same protocol: warning %q", w)
	}
	if w := Mismatch("web1", 0); !strings.Contains(w, "web1") || !strings.Contains(w, "Upgrade the agent") {
		t.Errorf("older agent: %q", w)
	}
	if w := Mismatch("web1", Protocol+1); !strings.Contains(w, "Upgrade jepush") {
		t.Errorf("newer agent: %q", w)
	}
}
