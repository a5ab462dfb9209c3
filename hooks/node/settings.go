package node

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/jecloud/jecloud/internal/hook"
)

// settings are the hook's keys of sys/server.json:
//
//	{"node": {"mirror": "/srv/node-dist", "port_base": 5000, "instance_ports": [10000, 19999],
//	          "npm_registry": "http://10.0.0.5:4873/"}}
type settings struct {
	Node struct {
		Mirror   string `json:"mirror"`
		PortBase int    `json:"port_base"`
		// NPMRegistry is the npm registry npm ci installs from on this
		// server (a private one, or a caching mirror); empty: npm's own.
		NPMRegistry string `json:"npm_registry"`
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

// npmRegistry returns the npm registry's URL, checked: an absolute http or
// https URL with a host, and nothing npm would read as something else.
func (s settings) npmRegistry() (string, error) {
	r := s.Node.NPMRegistry
	if r == "" {
		return "", nil
	}
	u, err := url.Parse(r)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		strings.ContainsFunc(r, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
		return "", fmt.Errorf("server.json: node.npm_registry %q: give the registry's URL, http:// or https://, with no user or spaces, e.g. \"http://10.0.0.5:4873/\"", r)
	}
	return r, nil
}
