package node

import (
	"strings"
	"testing"
)

// TestNPMRegistry: server.json's node.npm_registry is a URL npm can only
// read as a registry; anything else is refused, naming the file, the value
// and the fix.
func TestNPMRegistry(t *testing.T) {
	for _, c := range []struct{ in, err string }{
		{"", ""},
		{"http://10.0.0.5:4873/", ""},
		{"https://npm.internal.example.com/repository/npm/", ""},
		{"10.0.0.5:4873", "node.npm_registry"},
		{"file:///etc/passwd", "give the registry's URL"},
		{"http://user:secret@10.0.0.5/", "with no user"},
		{"http://10.0.0.5/\n--global", "node.npm_registry"},
		{"http:///path", "node.npm_registry"},
	} {
		var s settings
		s.Node.NPMRegistry = c.in
		got, err := s.npmRegistry()
		switch {
		case c.err == "" && (err != nil || got != c.in):
			t.Errorf("%q: %q, %v", c.in, got, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "server.json")):
			t.Errorf("%q: %v, want an error with %q", c.in, err, c.err)
		}
	}
}
