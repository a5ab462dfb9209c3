package hook

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadServerAndSettings: the caller reads server.json once; each hook
// takes its key, and a file that does not parse fails only the hooks that
// ask for their settings, with the position of the fault.
func TestReadServerAndSettings(t *testing.T) {
	type node struct {
		Mirror   string `json:"mirror"`
		PortBase int    `json:"port_base"`
	}
	for _, tc := range []struct {
		name, file string // file "": no server.json
		want       node
		wantErr    string
	}{
		{name: "missing", file: ""},
		{name: "no key", file: `{"retention": {"keep_releases": 3}}`},
		{name: "key", file: `{"node": {"mirror": "/srv/node", "port_base": 6000}}`, want: node{"/srv/node", 6000}},
		{name: "key in another case", file: `{"Node": {"mirror": "/srv/node"}}`, want: node{Mirror: "/srv/node"}},
		{name: "null", file: `{"node": null}`},
		{name: "wrong type", file: `{"node": {"port_base": "x"}}`, wantErr: `server.json: key "node"`},
		{name: "does not parse", file: "{\n  \"node\": {\"mirror\": \"/srv\",}\n}", wantErr: "server.json:2:"},
		{name: "empty", file: " ", wantErr: "the file is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if tc.file != "" {
				os.MkdirAll(filepath.Join(root, "sys"), 0o755)
				if err := os.WriteFile(filepath.Join(root, "sys", "server.json"), []byte(tc.file), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			req := Request{Root: root}
			req.ReadServer()
			var got node
			err := req.Settings("node", &got)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Settings: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Settings: %v, want an error with %q", err, tc.wantErr)
			case got != tc.want:
				t.Errorf("Settings = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestServeFillsARequestWrittenByHand: `jeagent hook NAME PHASE` with a
// request that has no app_dir and no server gets both, as from the agent.
func TestServeFillsARequestWrittenByHand(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "sys"), 0o755)
	os.WriteFile(filepath.Join(root, "sys", "server.json"), []byte(`{"node": {"mirror": "/srv/node"}}`), 0o640)
	for _, tc := range []struct {
		name, stdin, wantDir, wantMirror string
	}{
		{"by hand", `{"app": "web", "env": "prod", "root": "` + root + `"}`, filepath.Join(root, "web", "prod"), "/srv/node"},
		{"from the agent", `{"app": "web", "env": "prod", "root": "` + root + `", "app_dir": "/elsewhere", "server": {"node": {"mirror": "/m"}}}`, "/elsewhere", "/m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen Request
			h := recorder{&seen}
			var out, errb strings.Builder
			if code := Serve(h, []string{Install}, strings.NewReader(tc.stdin), &out, &errb); code != 0 {
				t.Fatalf("Serve = %d: %s %s", code, out.String(), errb.String())
			}
			var s struct{ Mirror string }
			if err := seen.Settings("node", &s); err != nil || seen.AppDir != tc.wantDir || s.Mirror != tc.wantMirror {
				t.Errorf("request: app_dir %q, mirror %q, %v; want %q, %q", seen.AppDir, s.Mirror, err, tc.wantDir, tc.wantMirror)
			}
		})
	}
}

// recorder is a hook that keeps the request it is given.
type recorder struct{ req *Request }

func (recorder) Name() string { return "recorder" }
func (r recorder) Run(ctx context.Context, req Request, log io.Writer) (Response, error) {
	*r.req = req
	return Response{}, nil
}

// TestSettingsKeysThatDifferInCase: server.json with "Node" and "NODE"
// (or "node" and "Node") names one hook's settings twice. The old code
// took the exact key, else whichever Go's map order gave first, so a hook
// could get either value from one run to the next. It is refused, naming
// the file and the keys.
func TestSettingsKeysThatDifferInCase(t *testing.T) {
	for _, file := range []string{
		`{"Node": {"mirror": "/a"}, "NODE": {"mirror": "/b"}}`,
		`{"node": {"mirror": "/a"}, "Node": {"mirror": "/b"}, "nOde": {"mirror": "/c"}}`,
	} {
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "sys"), 0o755)
		os.WriteFile(filepath.Join(root, "sys", "server.json"), []byte(file), 0o640)
		seen := map[string]bool{}
		for i := 0; i < 50; i++ {
			req := Request{Root: root}
			req.ReadServer()
			var got struct{ Mirror string }
			err := req.Settings("node", &got)
			if err == nil {
				seen[got.Mirror] = true
				continue
			}
			if !strings.Contains(err.Error(), "server.json") || !strings.Contains(err.Error(), `"Node"`) || !strings.Contains(err.Error(), "keep one") {
				t.Errorf("%s: error %q does not name the file, the keys and the fix", file, err)
			}
		}
		if len(seen) > 0 {
			t.Errorf("%s: no error; values taken over 50 reads: %v", file, seen)
		}
	}
	if !t.Failed() {
		t.Logf("summary: 2 server.json files with one key in several cases: refused, 50 of 50 reads each (the old code gave /a or /b by map order)")
	}
}
