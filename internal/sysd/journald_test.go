package sysd

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// debianJournaldConf is Debian 12's /etc/systemd/journald.conf: every
// setting commented out.
const debianJournaldConf = `[Journal]
#Storage=auto
#Compress=yes
#SystemMaxUse=
#SystemKeepFree=
#MaxRetentionSec=
`

func TestWriteJournald(t *testing.T) {
	for _, tc := range []struct {
		name     string
		files    map[string]string // under the root
		wantSet  []string
		wantLeft []string
	}{
		{name: "nothing configured", wantSet: []string{"SystemMaxUse=1G", "MaxRetentionSec=1month"}},
		{name: "Debian's commented file", files: map[string]string{"etc/systemd/journald.conf": debianJournaldConf},
			wantSet: []string{"SystemMaxUse=1G", "MaxRetentionSec=1month"}},
		{name: "administrator's cap in journald.conf",
			files:    map[string]string{"etc/systemd/journald.conf": debianJournaldConf + "SystemMaxUse=10G\n"},
			wantSet:  []string{"MaxRetentionSec=1month"},
			wantLeft: []string{"SystemMaxUse (in /etc/systemd/journald.conf)"}},
		{name: "a vendor's drop-in", files: map[string]string{"usr/lib/systemd/journald.conf.d/10-vendor.conf": "[Journal]\n MaxRetentionSec = 2week\n"},
			wantSet:  []string{"SystemMaxUse=1G"},
			wantLeft: []string{"MaxRetentionSec (in /usr/lib/systemd/journald.conf.d/10-vendor.conf)"}},
		{name: "same keys in another section", files: map[string]string{"etc/systemd/journald.conf.d/x.conf": "[Other]\nSystemMaxUse=5G\n"},
			wantSet: []string{"SystemMaxUse=1G", "MaxRetentionSec=1month"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for p, c := range tc.files {
				os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
				if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r, err := WriteJournald(root)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(root, JournaldDropIn)
			if !r.Written || r.Path != path || !slices.Equal(r.Set, tc.wantSet) || !slices.Equal(r.Left, tc.wantLeft) {
				t.Fatalf("result %+v, want set %v left %v", r, tc.wantSet, tc.wantLeft)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(b), "# Written by `jeagent init`") {
				t.Errorf("no header:\n%s", b)
			}
			if want := "[Journal]\n" + strings.Join(tc.wantSet, "\n") + "\n"; !strings.HasSuffix(string(b), want) {
				t.Errorf("drop-in:\n%s\nwant it to end with:\n%s", b, want)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
				t.Errorf("mode %v", fi.Mode())
			}

			// A second run changes nothing and leaves the file alone.
			old := time.Now().Add(-time.Hour)
			os.Chtimes(path, old, old)
			r, err = WriteJournald(root)
			if err != nil || r.Changed() || !strings.Contains(r.String(), "nothing to do") {
				t.Fatalf("second run: %+v %v", r, err)
			}
			if fi, _ := os.Stat(path); !fi.ModTime().Equal(old) {
				t.Error("an unchanged drop-in was rewritten")
			}

			// A hand edit is put back.
			os.WriteFile(path, []byte("[Journal]\nSystemMaxUse=100G\n"), 0o644)
			if r, err = WriteJournald(root); err != nil || !r.Written {
				t.Fatalf("after an edit: %+v %v", r, err)
			}
			if again, _ := os.ReadFile(path); string(again) != string(b) {
				t.Errorf("after an edit:\n%s", again)
			}
			entries, _ := os.ReadDir(filepath.Dir(path))
			for _, e := range entries {
				if e.Name() != filepath.Base(path) && !strings.HasSuffix(e.Name(), ".conf") {
					t.Errorf("leftover %s", e.Name())
				}
			}
		})
	}
}

// TestJournaldAllSetElsewhere: when the administrator sets every key, the
// drop-in goes away (it would override journald.conf) and stays away.
func TestJournaldAllSetElsewhere(t *testing.T) {
	root := t.TempDir()
	if r, err := WriteJournald(root); err != nil || !r.Written {
		t.Fatalf("first run: %+v %v", r, err)
	}
	local := filepath.Join(root, "etc/systemd/journald.conf.d/zz-local.conf")
	os.WriteFile(local, []byte("[Journal]\nSystemMaxUse=20G\nMaxRetentionSec=1year\n"), 0o644)
	r, err := WriteJournald(root)
	if err != nil || !r.Removed || len(r.Set) != 0 || len(r.Left) != 2 {
		t.Fatalf("after a local drop-in: %+v %v", r, err)
	}
	if _, err := os.Stat(filepath.Join(root, JournaldDropIn)); !os.IsNotExist(err) {
		t.Errorf("drop-in still there: %v", err)
	}
	s := r.String()
	for _, want := range []string{"removed " + filepath.Join(root, JournaldDropIn), "left to your own setting: SystemMaxUse (in /etc/systemd/journald.conf.d/zz-local.conf)"} {
		if !strings.Contains(s, want) {
			t.Errorf("%q lacks %q", s, want)
		}
	}
	if r, err := WriteJournald(root); err != nil || r.Changed() {
		t.Errorf("third run: %+v %v", r, err)
	}
}

func TestJournaldResultString(t *testing.T) {
	s := JournaldResult{Path: JournaldDropIn, Written: true, Set: []string{"SystemMaxUse=1G"}, Restarted: true}.String()
	for _, want := range []string{"wrote " + JournaldDropIn + " (SystemMaxUse=1G)", "restarted " + JournaldService} {
		if !strings.Contains(s, want) {
			t.Errorf("%q lacks %q", s, want)
		}
	}
	if strings.Contains(s, "nothing to do") {
		t.Errorf("changed, yet: %q", s)
	}
}
