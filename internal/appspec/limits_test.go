package appspec

import (
	"strings"
	"testing"
)

// TestLimits: [limits.TYPE] in jecloud.toml sets a process type's memory,
// tasks and CPU weight; the rest keep the defaults; a bad value is refused
// with the file, the value and what to write instead.
func TestLimits(t *testing.T) {
	procfile := "web: node s.js\nworker: node w.js\n"
	for _, tc := range []struct {
		name, toml string
		want       map[string]Limits // by type, with defaults filled in
		wantErr    string
	}{
		{"defaults", "", map[string]Limits{
			"web":    {DefaultMemory, DefaultTasks, DefaultCPUWeight},
			"worker": {"50%", 512, 100},
		}, ""},
		{"web set", "[limits.web]\nmemory = \"512M\"\ntasks = 256\ncpu_weight = 200\n", map[string]Limits{
			"web":    {"512M", 256, 200},
			"worker": {"50%", 512, 100},
		}, ""},
		{"partial", "[limits.worker]\nmemory = \"25%\"\n", map[string]Limits{
			"web":    {"50%", 512, 100},
			"worker": {"25%", 512, 100},
		}, ""},
		{"unknown type", "[limits.clock]\ntasks = 64\n", nil, `jecloud.toml: [limits.clock] names "clock", which is not a process type of the Procfile ([web worker])`},
		{"unknown key", "[limits.web]\nmemory_max = \"1G\"\n", nil, `jecloud.toml:2: unknown key "memory_max" in [limits.web] (the keys in [limits.web] are cpu_weight, memory, tasks)`},
		{"memory unit", "[limits.web]\nmemory = \"512MB\"\n", nil, `jecloud.toml: [limits.web] memory = "512MB": give a size of at least 32M with K, M, G or T (powers of 1024), e.g. "512M" or "2G", or a share of the server's RAM from "1%" to "100%"`},
		{"memory too small", "[limits.web]\nmemory = \"16M\"\n", nil, `[limits.web] memory = "16M": give a size of at least 32M`},
		{"memory percent", "[limits.web]\nmemory = \"150%\"\n", nil, `[limits.web] memory = "150%"`},
		{"memory negative", "[limits.web]\nmemory = \"-1\"\n", nil, `[limits.web] memory = "-1"`},
		{"memory infinity", "[limits.web]\nmemory = \"infinity\"\n", nil, `[limits.web] memory = "infinity"`},
		{"tasks too few", "[limits.web]\ntasks = 4\n", nil, `jecloud.toml: [limits.web] tasks = 4: give 16 to 65536 processes and threads (default 512)`},
		{"tasks too many", "[limits.web]\ntasks = 1000000\n", nil, `[limits.web] tasks = 1000000: give 16 to 65536`},
		{"cpu weight", "[limits.worker]\ncpu_weight = 0\n", nil, `jecloud.toml: [limits.worker] cpu_weight = 0: give 1 to 10000 (default 100`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, map[string]string{"Procfile": procfile, "jecloud.toml": tc.toml})
			s, err := Check(dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for typ, want := range tc.want {
				if got := s.LimitsOf(typ); got != want {
					t.Errorf("%s: %+v, want %+v", typ, got, want)
				}
			}
		})
	}
}

func TestLimitsMemoryHigh(t *testing.T) {
	for in, want := range map[string]string{"50%": "45%", "1%": "1%", "100%": "90%", "512M": "483183820", "1G": "966367641", "40000K": "36864000"} {
		if got := (Limits{Memory: in}).MemoryHigh(); got != want {
			t.Errorf("MemoryHigh of %s = %s, want %s", in, got, want)
		}
	}
}
