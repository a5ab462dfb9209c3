package oom

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestChildNotProtected: the agent runs at oom_score_adj -500 (its unit's
// OOMScoreAdjust); a program it starts, and that program's children, run
// at 0, so that an npm ci that eats memory is not shielded from the OOM
// killer with the agent. Needs root (to lower the test's own adjustment).
func TestChildNotProtected(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("lowering oom_score_adj needs root")
	}
	before, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { os.WriteFile("/proc/self/oom_score_adj", before, 0) })
	inherited := "-500"
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte("-500\n"), 0); err != nil {
		// No CAP_SYS_RESOURCE (a container): the children start at +100
		// (raising needs no privilege, and going back to the minimum 0
		// neither), while Unprotect reads the agent's -500 from a file.
		t.Logf("cannot lower oom_score_adj here (%v): children start at +100, the agent's -500 is read from a file", err)
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte("100\n"), 0); err != nil {
			t.Skip(err)
		}
		self := filepath.Join(t.TempDir(), "oom_score_adj")
		os.WriteFile(self, []byte("-500\n"), 0o644)
		adjPath = func(pid string) string {
			if pid == "self" {
				return self
			}
			return "/proc/" + pid + "/oom_score_adj"
		}
		t.Cleanup(func() { adjPath = func(pid string) string { return "/proc/" + pid + "/oom_score_adj" } })
		inherited = "100"
	}

	var out strings.Builder
	// The child reads its value after a pause: Unprotect writes it just
	// after the start (the window the package's doc names).
	cmd := exec.Command("sh", "-c", "sleep 0.3; cat /proc/self/oom_score_adj; sh -c 'cat /proc/self/oom_score_adj'")
	cmd.Stdout = &out
	if err := Run(cmd); err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(out.String()); len(got) != 2 || got[0] != "0" || got[1] != "0" {
		t.Errorf("child and grandchild oom_score_adj %q, want 0 and 0 (the agent's is -500)", got)
	}
	// Without it, the child is as protected as the agent: the attack.
	out.Reset()
	plain := exec.Command("sh", "-c", "cat /proc/self/oom_score_adj")
	plain.Stdout = &out
	if err := plain.Run(); err != nil || strings.TrimSpace(out.String()) != inherited {
		t.Errorf("a plain exec's child: %q %v, want the inherited %s this package undoes", out.String(), err, inherited)
	}
	t.Logf("summary: agent at -500; a program it starts through oom.Run and that program's child at 0 (a plain exec's child inherits -500)")
}
