package routes

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/state"
)

// UpstreamsFile is the record's name in the app environment's directory.
const UpstreamsFile = "upstreams.json"

// Upstreams is APP/ENV/upstreams.json: where the front door sends the app
// environment's requests. The node hook writes it at each deploy (the new
// release's web instances in Web, the old ones in Draining until their
// requests in flight are done); Apply renders it into the proxy's
// configuration.
type Upstreams struct {
	// Web are the loopback addresses ("127.0.0.1:PORT") of the web
	// instances that take new requests, balanced between them.
	Web []string `json:"web,omitempty"`
	// Draining are instances that take no new requests and finish the
	// ones they have. They stay in the proxy's configuration, unreachable,
	// so that InFlight can count their requests.
	Draining []string `json:"draining,omitempty"`
	// Static is the directory the front door serves files from, for a
	// static site (no web process): a copy of the live release's static
	// directory under StaticDir, which the proxy's user can read, with
	// regular files and directories only.
	Static string `json:"static,omitempty"`
}

// StaticDir is where the static sites' copies are kept, readable by the
// proxy: ROOT/sys/static/APP/ENV/VERSION.
func StaticDir(l state.Layout) string { return filepath.Join(l.Sys(), "static") }

// checkStatic accepts a directory under StaticDir only: the record is
// rendered into the proxy's configuration as the root of a file server.
func checkStatic(l state.Layout, dir string) error {
	if dir == "" {
		return nil
	}
	rel, err := filepath.Rel(StaticDir(l), dir)
	if err != nil || !filepath.IsAbs(dir) || filepath.Clean(dir) != dir || !filepath.IsLocal(rel) || rel == "." || strings.ContainsAny(dir, "{}\\") {
		return fmt.Errorf("static %q: want a directory under %s", dir, StaticDir(l))
	}
	return nil
}

// ReadUpstreams returns ae's record; none is an empty one.
func ReadUpstreams(l state.Layout, ae state.AppEnv) (Upstreams, error) {
	path := filepath.Join(l.AppDir(ae), UpstreamsFile)
	var u Upstreams
	err := state.Read(path, &u)
	if errors.Is(err, fs.ErrNotExist) {
		return Upstreams{}, nil
	}
	if err != nil {
		return Upstreams{}, err
	}
	for _, a := range append(append([]string(nil), u.Web...), u.Draining...) {
		if err := checkUpstream(a); err != nil {
			return Upstreams{}, fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := checkStatic(l, u.Static); err != nil {
		return Upstreams{}, fmt.Errorf("%s: %w", path, err)
	}
	return u, nil
}

// WriteUpstreams records u as ae's upstreams (atomically).
func WriteUpstreams(l state.Layout, ae state.AppEnv, u Upstreams) error {
	for _, a := range append(append([]string(nil), u.Web...), u.Draining...) {
		if err := checkUpstream(a); err != nil {
			return err
		}
	}
	if err := checkStatic(l, u.Static); err != nil {
		return err
	}
	b, err := json.MarshalIndent(u, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(l.AppDir(ae), UpstreamsFile), append(b, '\n'), 0o644)
}

// checkUpstream accepts loopback addresses with a port only: the record is
// rendered into the proxy's configuration.
func checkUpstream(a string) error {
	ap, err := netip.ParseAddrPort(a)
	if err != nil || !ap.Addr().IsLoopback() || ap.Port() == 0 {
		return fmt.Errorf("upstream %q: want a loopback address and port such as 127.0.0.1:10001", a)
	}
	return nil
}
