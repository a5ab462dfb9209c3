package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// settings are the hook's keys of sys/server.json:
//
//	{"node": {"mirror": "/srv/node-dist", "port_base": 5000}}
type settings struct {
	Node struct {
		Mirror   string `json:"mirror"`
		PortBase int    `json:"port_base"`
	} `json:"node"`
}

func readSettings(root string) (settings, error) {
	var s settings
	path := filepath.Join(root, "sys", "server.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("%s: key \"node\": %w", path, err)
	}
	return s, nil
}

func (s settings) portBase() int {
	if s.Node.PortBase > 0 {
		return s.Node.PortBase
	}
	return 5000
}
