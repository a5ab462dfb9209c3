package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/jecloud/jecloud/internal/atomicfile"
)

// portFile holds the web port given to an app environment, once and for good.
func portFile(dir string) string { return filepath.Join(dir, "node.json") }

type portRecord struct {
	Port int `json:"port"`
}

// allocatePort returns the app environment's web port: the one recorded in
// APP/ENV/node.json, else the lowest free one from the port base, recorded.
// Roll-forward runs one at a time, so two apps never race for a port.
func allocatePort(a *app) (int, error) {
	var rec portRecord
	data, err := os.ReadFile(portFile(a.dir))
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &rec); err != nil || rec.Port <= 0 || rec.Port > 65535 {
			return 0, fmt.Errorf("%s: want {\"port\": N} with N from 1 to 65535: fix or remove the file", portFile(a.dir))
		}
		return rec.Port, nil
	case !errors.Is(err, fs.ErrNotExist):
		return 0, err
	}
	used := map[int]bool{}
	matches, _ := filepath.Glob(filepath.Join(a.root, "*", "*", "node.json"))
	for _, m := range matches {
		var r portRecord
		if b, err := os.ReadFile(m); err == nil && json.Unmarshal(b, &r) == nil {
			used[r.Port] = true
		}
	}
	port := a.settings.portBase()
	for used[port] {
		port++
	}
	b, _ := json.Marshal(portRecord{port})
	if err := atomicfile.WriteFile(portFile(a.dir), append(b, '\n'), 0o644); err != nil {
		return 0, err
	}
	return port, nil
}
