package appspec

import (
	"fmt"
	"regexp"
	"strconv"
	"sync"
)

// Limits are what one process type may use, per instance: its unit's
// MemoryMax= (and MemoryHigh=, 90 % of it, where the kernel starts
// reclaiming and slowing the process down before it is killed), TasksMax=
// and CPUWeight=. Set in jecloud.toml:
//
//	[limits.web]
//	memory = "512M"   # bytes with K, M, G or T (powers of 1024), or a share of the server's RAM: "25%"
//	tasks = 256       # processes and threads, all together
//	cpu_weight = 100  # 1 to 10000: the type's share of the CPU when the CPU is short
type Limits struct {
	Memory    string // as systemd takes it: "512M" or "50%"
	Tasks     int
	CPUWeight int
}

// The defaults of a process type (docs/node.md, "Limits"):
//   - memory: half the server's RAM. One leaking or runaway process is
//     killed (and restarted) before it takes the server, its database and
//     the agent with it; an app that needs more says so.
//   - tasks: 512 processes and threads. Node.js runs about a dozen threads;
//     512 leaves room for child processes, and stops a fork bomb long
//     before the server's pid table (tens of thousands) is full.
//   - cpu_weight: 100, systemd's default, said out loud: every unit gets an
//     equal share when the CPU is short, so an app spinning on both cores
//     slows the others (and the agent's roll-forward) by half, not to a halt.
const (
	DefaultMemory    = "50%"
	DefaultTasks     = 512
	DefaultCPUWeight = 100

	MinMemory = 32 << 20 // Node.js does not start with less
	MinTasks  = 16       // Node.js itself runs about a dozen threads
	MaxTasks  = 65536
)

// LimitsOf returns process type name's limits, defaults filled in.
func (s *Spec) LimitsOf(name string) Limits {
	l := s.Limits[name]
	if l.Memory == "" {
		l.Memory = DefaultMemory
	}
	if l.Tasks == 0 {
		l.Tasks = DefaultTasks
	}
	if l.CPUWeight == 0 {
		l.CPUWeight = DefaultCPUWeight
	}
	return l
}

// MemoryHigh is where the kernel starts throttling: 90 % of Memory.
func (l Limits) MemoryHigh() string {
	m := memoryRE().FindStringSubmatch(l.Memory)
	if m == nil {
		return ""
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	if m[2] == "%" {
		return strconv.FormatUint(max(n*9/10, 1), 10) + "%"
	}
	return strconv.FormatUint(n*unit(m[2])*9/10, 10)
}

// rawLimits is a [limits.TYPE] table as written.
type rawLimits struct {
	Memory    *string `toml:"memory"`
	Tasks     *int    `toml:"tasks"`
	CPUWeight *int    `toml:"cpu_weight"`
}

var memoryRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]{1,15})([KMGT%]?)$`) })

func unit(suffix string) uint64 {
	switch suffix {
	case "K":
		return 1 << 10
	case "M":
		return 1 << 20
	case "G":
		return 1 << 30
	case "T":
		return 1 << 40
	}
	return 1
}

// parseLimits checks the [limits.TYPE] tables of the jecloud.toml at path.
func parseLimits(path string, raw map[string]rawLimits) (map[string]Limits, error) {
	out := map[string]Limits{}
	for name, r := range raw {
		var l Limits
		if r.Memory != nil {
			m := memoryRE().FindStringSubmatch(*r.Memory)
			bad := m == nil
			if !bad {
				n, _ := strconv.ParseUint(m[1], 10, 64)
				if m[2] == "%" {
					bad = n < 1 || n > 100
				} else {
					bad = n*unit(m[2]) < MinMemory
				}
			}
			if bad {
				return nil, fmt.Errorf("%s: [limits.%s] memory = %q: give a size of at least 32M with K, M, G or T (powers of 1024), e.g. \"512M\" or \"2G\", or a share of the server's RAM from \"1%%\" to \"100%%\"",
					path, name, *r.Memory)
			}
			l.Memory = *r.Memory
		}
		if r.Tasks != nil {
			if *r.Tasks < MinTasks || *r.Tasks > MaxTasks {
				return nil, fmt.Errorf("%s: [limits.%s] tasks = %d: give %d to %d processes and threads (default %d)",
					path, name, *r.Tasks, MinTasks, MaxTasks, DefaultTasks)
			}
			l.Tasks = *r.Tasks
		}
		if r.CPUWeight != nil {
			if *r.CPUWeight < 1 || *r.CPUWeight > 10000 {
				return nil, fmt.Errorf("%s: [limits.%s] cpu_weight = %d: give 1 to 10000 (default %d; 200 is twice the CPU of a type at 100 when the CPU is short)",
					path, name, *r.CPUWeight, DefaultCPUWeight)
			}
			l.CPUWeight = *r.CPUWeight
		}
		out[name] = l
	}
	return out, nil
}
