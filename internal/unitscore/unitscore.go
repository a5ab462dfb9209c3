// Package unitscore scores a unit file the way the issue #17 table does:
// `systemd-analyze security --offline=yes`, which needs no running
// systemd (tests use it on the machine that builds).
package unitscore

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// ErrNoAnalyzer is returned when systemd-analyze is not installed.
var ErrNoAnalyzer = errors.New("systemd-analyze is not installed")

// Exposure returns a unit file's overall exposure and its verdict as
// systemd-analyze prints it ("2.6 OK").
func Exposure(path string) (float64, string, error) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		return 0, "", ErrNoAnalyzer
	}
	out, err := exec.Command("systemd-analyze", "security", "--offline=yes", "--no-pager", path).CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	i := strings.LastIndex(last, ": ")
	if i < 0 || !strings.Contains(last, "Overall exposure level") {
		return 0, "", fmt.Errorf("systemd-analyze security %s: %v: %s", path, err, strings.TrimSpace(string(out)))
	}
	verdict := strings.TrimSpace(strings.TrimRight(last[i+2:], " 🙂😐🙁😨"))
	var score float64
	if _, err := fmt.Sscan(verdict, &score); err != nil {
		return 0, "", fmt.Errorf("systemd-analyze security %s: no score in %q", path, last)
	}
	return score, verdict, nil
}
