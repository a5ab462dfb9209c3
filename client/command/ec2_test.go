package command

import (
	"os"
	"path/filepath"
	"testing"
)

// TestTickBinary: new EC2 servers get the jeagent-tick that sits beside the
// jeagent they are given, under the names `make build` and `make cross` use.
func TestTickBinary(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"jeagent", "jeagent-tick", "jeagent-linux-arm64", "jeagent-tick-linux-arm64", "jeagent-linux-amd64", "my-agent"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("#!"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "jeagent"), nil, 0o755)
	os.Mkdir(filepath.Join(dir, "sub", "jeagent-tick"), 0o755) // a directory is no program
	for _, tc := range []struct{ agent, want string }{
		{"jeagent", "jeagent-tick"},
		{"jeagent-linux-arm64", "jeagent-tick-linux-arm64"},
		{"jeagent-linux-amd64", ""}, // no tick built for it
		{"my-agent", ""},            // another naming: no guess
		{"sub/jeagent", ""},
	} {
		got := tickBinary(filepath.Join(dir, tc.agent))
		if want := tc.want; want != "" {
			want = filepath.Join(dir, want)
			if got != want {
				t.Errorf("tickBinary(%s) = %q, want %q", tc.agent, got, want)
			}
		} else if got != "" {
			t.Errorf("tickBinary(%s) = %q, want none", tc.agent, got)
		}
	}
}
