package node

import (
	"fmt"

	"github.com/jecloud/jecloud/internal/hook"
)

// settings are the hook's keys of sys/server.json:
//
//	{"node": {"mirror": "/srv/node-dist", "port_base": 5000, "instance_ports": [10000, 19999]}}
type settings struct {
	Node struct {
		Mirror   string `json:"mirror"`
		PortBase int    `json:"port_base"`
		// InstancePorts is the range of the web instances' ports behind
		// the front door (InstancePorts when unset).
		InstancePorts []int `json:"instance_ports"`
	} `json:"node"`
}

// readSettings takes the hook's settings from the request (server.json as
// the agent read it).
func readSettings(req hook.Request) (settings, error) {
	var s settings
	err := req.Settings("node", &s.Node)
	return s, err
}

// instancePorts returns the range of the web instances' ports, checked.
func (s settings) instancePorts() (int, int, error) {
	r := s.Node.InstancePorts
	if r == nil {
		return InstancePorts[0], InstancePorts[1], nil
	}
	if len(r) != 2 || r[0] < 1024 || r[1] > 65535 || r[0] > r[1] {
		return 0, 0, fmt.Errorf("server.json: node.instance_ports %v: give [FIRST, LAST] with 1024 <= FIRST <= LAST <= 65535, e.g. [10000, 19999]", r)
	}
	return r[0], r[1], nil
}

func (s settings) portBase() int {
	if s.Node.PortBase > 0 {
		return s.Node.PortBase
	}
	return 5000
}
