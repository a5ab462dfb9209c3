package node

import "github.com/jecloud/jecloud/internal/hook"

// settings are the hook's keys of sys/server.json:
//
//	{"node": {"mirror": "/srv/node-dist", "port_base": 5000}}
type settings struct {
	Node struct {
		Mirror   string `json:"mirror"`
		PortBase int    `json:"port_base"`
	} `json:"node"`
}

// readSettings takes the hook's settings from the request (server.json as
// the agent read it).
func readSettings(req hook.Request) (settings, error) {
	var s settings
	err := req.Settings("node", &s.Node)
	return s, err
}

func (s settings) portBase() int {
	if s.Node.PortBase > 0 {
		return s.Node.PortBase
	}
	return 5000
}
