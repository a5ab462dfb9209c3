package hook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/jecloud/jecloud/internal/state"
)

// Serve runs a built-in hook as an executable speaking the protocol, the
// way docker-credential-helpers serve a Go interface: `jeagent hook NAME
// PHASE` with the request on stdin. It returns the exit status.
func Serve(h Hook, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprintf(stderr, "usage: %s PHASE (install, prepare, deployed, cleanup), request JSON on stdin\n", h.Name())
		return 2
	}
	var req Request
	data, err := readAllLimited(stdin)
	if err == nil && len(data) > 0 {
		err = json.Unmarshal(data, &req)
	}
	if err != nil {
		fmt.Fprintf(stderr, "reading the request on stdin: %v\n", err)
		return 2
	}
	req.Phase = args[0]
	fillFromEnv(&req)
	resp, err := h.Run(context.Background(), req, stderr)
	if err != nil {
		var he *Error
		if errors.As(err, &he) {
			resp.Message = he.Reason
		} else if resp.Message == "" {
			resp.Message = err.Error()
		}
	}
	if resp.Message != "" || len(resp.Vars) > 0 {
		json.NewEncoder(stdout).Encode(resp)
	}
	if err != nil {
		return 1
	}
	return 0
}

func fillFromEnv(req *Request) {
	for _, f := range []struct {
		dst *string
		env string
	}{
		{&req.App, "JECLOUD_APP"}, {&req.Env, "JECLOUD_ENV"}, {&req.Version, "JECLOUD_VERSION"},
		{&req.ReleaseDir, "JECLOUD_RELEASE_DIR"}, {&req.Root, "JECLOUD_ROOT"}, {&req.AppDir, "JECLOUD_APP_DIR"},
	} {
		if *f.dst == "" {
			*f.dst = os.Getenv(f.env)
		}
	}
	if req.Phase == Destroy && os.Getenv("JECLOUD_DATA") == "1" {
		req.Data = true
	}
	// A request written by hand may leave out what the agent fills in.
	if req.AppDir == "" && req.Root != "" && req.App != "" && req.Env != "" {
		req.AppDir = state.Layout{Root: req.Root}.AppDir(state.AppEnv{App: req.App, Env: req.Env})
	}
	if req.Server == nil && req.ServerError == "" && req.Root != "" {
		req.ReadServer()
	}
}
