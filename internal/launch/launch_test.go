package launch

import (
	"slices"
	"testing"
)

func TestRunEnv(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env, out []string
	}{
		{"root's own", []string{"PATH=/bin", "JECLOUD_FAULT=after:verifying", "HOME=/root"},
			[]string{"PATH=/bin", "JECLOUD_FAULT=after:verifying", "HOME=/root"}},
		{"through sudo", []string{"PATH=/bin", "SUDO_USER=jecloud", "SUDO_UID=1000", "JECLOUD_FAULT=x", "JECLOUD_ROOT=/tmp/x", "HOME=/root"},
			[]string{"PATH=/bin", "HOME=/root"}},
		{"through doas", []string{"DOAS_USER=jecloud", "JECLOUD_ROOT=/tmp/x", "TERM=xterm"}, []string{"TERM=xterm"}},
		{"through pkexec", []string{"PKEXEC_UID=1000", "JECLOUD_FAULT=x"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := runEnv(tc.env); !slices.Equal(got, tc.out) {
				t.Errorf("runEnv(%q) = %q, want %q", tc.env, got, tc.out)
			}
		})
	}
}
