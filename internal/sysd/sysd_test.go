package sysd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/systemd"
)

func TestWriteUnitsOnlyWhenChanged(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "system")
	units := systemd.Units("", "")
	written, err := WriteUnits(dir, units)
	if err != nil || len(written) != 2 {
		t.Fatalf("first write: %v %v", written, err)
	}
	for _, u := range units {
		b, err := os.ReadFile(filepath.Join(dir, u.Name))
		if err != nil || string(b) != string(u.Content) {
			t.Fatalf("%s: %v", u.Name, err)
		}
		fi, _ := os.Stat(filepath.Join(dir, u.Name))
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v", u.Name, fi.Mode())
		}
	}
	old := time.Now().Add(-time.Hour)
	for _, u := range units {
		os.Chtimes(filepath.Join(dir, u.Name), old, old)
	}
	// Same content: nothing written, files untouched.
	written, err = WriteUnits(dir, units)
	if err != nil || len(written) != 0 {
		t.Fatalf("second write: %v %v", written, err)
	}
	fi, _ := os.Stat(filepath.Join(dir, systemd.Timer))
	if !fi.ModTime().Equal(old) {
		t.Error("an unchanged unit was rewritten")
	}
	// A hand edit is put back; the other file is left alone.
	os.WriteFile(filepath.Join(dir, systemd.Service), []byte("[Service]\nExecStart=/bin/false\n"), 0o644)
	written, err = WriteUnits(dir, units)
	if err != nil || len(written) != 1 || filepath.Base(written[0]) != systemd.Service {
		t.Fatalf("after an edit: %v %v", written, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("leftovers in %s: %v", dir, entries)
	}
}

func TestResultString(t *testing.T) {
	if s := (Result{}).String(); !strings.Contains(s, "nothing to do") {
		t.Errorf("unchanged: %q", s)
	}
	s := Result{Written: []string{"/etc/systemd/system/" + systemd.Timer}, Reloaded: true, Enabled: true, Started: true}.String()
	for _, want := range []string{"wrote /etc/systemd/system/" + systemd.Timer, "daemon-reload", "enabled " + systemd.Timer, "started " + systemd.Timer} {
		if !strings.Contains(s, want) {
			t.Errorf("%q lacks %q", s, want)
		}
	}
	if strings.Contains(s, "nothing to do") {
		t.Errorf("changed, yet: %q", s)
	}
}

func TestInstalled(t *testing.T) {
	dir := t.TempDir()
	units := systemd.Units("/usr/bin/jeagent", "")
	if Installed(dir, units) {
		t.Fatal("an empty dir holds the units")
	}
	if _, err := WriteUnits(dir, units); err != nil {
		t.Fatal(err)
	}
	if !Installed(dir, units) {
		t.Fatal("the units just written are not seen")
	}
	if Installed(dir, systemd.Units("/usr/local/bin/jeagent", "")) {
		t.Error("units for another binary count as installed")
	}
}

// TestLimitsAndSandbox: the limits every unit JeCloud writes for an app
// gets, and the sandbox's block of the instance metadata service.
func TestLimitsAndSandbox(t *testing.T) {
	got := Serialize(append(Limits(512, "45%", "50%", 100), Sandbox("/var/cloud/a/b/data")...))
	for _, want := range []string{"TasksMax=512\n", "MemoryHigh=45%\n", "MemoryMax=50%\n", "CPUWeight=100\n",
		"IPAddressDeny=169.254.169.254 fd00:ec2::254\n", "ReadWritePaths=/var/cloud/a/b/data\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %q:\n%s", want, got)
		}
	}
	if got := Serialize(Limits(64, "", "1G", 20)); strings.Contains(got, "MemoryHigh") || !strings.Contains(got, "MemoryMax=1G\n") {
		t.Errorf("without MemoryHigh:\n%s", got)
	}
}
