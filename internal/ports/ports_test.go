package ports

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAllocate(t *testing.T) {
	root := t.TempDir()
	dir := func(app, env string) string {
		d := filepath.Join(root, app, env)
		os.MkdirAll(d, 0o755)
		return d
	}
	a, b := dir("shop", "prod"), dir("shop", "stage")
	for _, tc := range []struct {
		dir, service string
		base, want   int
	}{
		{a, "web", 5000, 5000},
		{b, "web", 5000, 5001},
		{a, "web", 5000, 5000}, // recorded: never changes
		{a, "redis", 6400, 6400},
		{b, "redis", 6400, 6401},
		{b, "other", 5000, 5002},
	} {
		got, err := Allocate(root, tc.dir, tc.service, tc.base)
		if err != nil || got != tc.want {
			t.Errorf("Allocate(%s, %s) = %d, %v; want %d", filepath.Base(filepath.Dir(tc.dir))+"/"+filepath.Base(tc.dir), tc.service, got, err, tc.want)
		}
	}
	os.WriteFile(filepath.Join(a, FileName), []byte(`{"web": "x"}`), 0o644)
	if _, err := Allocate(root, a, "web", 5000); err == nil || !strings.Contains(err.Error(), "ports.json") {
		t.Errorf("bad file: %v", err)
	}
}
