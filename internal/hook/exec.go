package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jecloud/jecloud/internal/lines"
	"github.com/jecloud/jecloud/internal/oom"
)

// maxStdout caps what is read of a hook's stdout.
const maxStdout = 1 << 20

// Exec is a hook that is an executable file.
type Exec struct {
	Path    string
	Timeout time.Duration // 0: no limit beyond the caller's context
}

func (e Exec) Name() string { return filepath.Base(e.Path) }

// Run starts the executable with the protocol's argv, environment and stdin.
func (e Exec) Run(ctx context.Context, req Request, log io.Writer) (Response, error) {
	if e.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.Timeout)
		defer cancel()
	}
	in, err := json.Marshal(req)
	if err != nil {
		return Response{}, err
	}
	cmd := exec.CommandContext(ctx, e.Path, req.Phase)
	cmd.Env = append(os.Environ(), Environ(req)...)
	cmd.Stdin = bytes.NewReader(in)
	cmd.Dir = "/"
	if req.ReleaseDir != "" {
		if fi, err := os.Stat(req.ReleaseDir); err == nil && fi.IsDir() {
			cmd.Dir = req.ReleaseDir
		}
	}
	var stdout bytes.Buffer
	cmd.Stdout = &limitWriter{w: &stdout, n: maxStdout}
	lastLine := lines.Prefixed(log, e.Name()+": ")
	cmd.Stderr = lastLine
	setProcAttr(cmd)
	cmd.WaitDelay = 5 * time.Second
	runErr := oom.Run(cmd) // a hook is not protected from the OOM killer with the agent
	lastLine.Flush()

	var resp Response
	if out := bytes.TrimSpace(stdout.Bytes()); len(out) > 0 {
		if err := json.Unmarshal(out, &resp); err != nil && runErr == nil {
			return resp, &Error{Hook: e.Name(), Phase: req.Phase,
				Reason: fmt.Sprintf("stdout is not one JSON object (%v): print nothing, or {\"vars\": {...}}", err)}
		}
	}
	if runErr == nil {
		return resp, nil
	}
	reason := resp.Message
	if reason == "" {
		reason = lastLine.Last()
	}
	var ee *exec.ExitError
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		reason = fmt.Sprintf("timed out after %s", e.Timeout)
	case reason == "" && errors.As(runErr, &ee):
		reason = ee.ProcessState.String()
	case errors.As(runErr, &ee) && ee.ExitCode() == -1:
		// Killed by a signal (the OOM killer, a person): say so after its last words.
		reason += " (" + ee.ProcessState.String() + ")"
	case reason == "":
		reason = runErr.Error()
	}
	return resp, &Error{Hook: e.Name(), Phase: req.Phase, Reason: reason}
}

// Environ is the protocol's environment for req.
func Environ(req Request) []string {
	env := []string{
		"JECLOUD_PHASE=" + req.Phase,
		"JECLOUD_APP=" + req.App,
		"JECLOUD_ENV=" + req.Env,
		"JECLOUD_VERSION=" + req.Version,
		"JECLOUD_RELEASE_DIR=" + req.ReleaseDir,
		"JECLOUD_ROOT=" + req.Root,
		"JECLOUD_APP_DIR=" + req.AppDir,
	}
	if req.Phase == Destroy {
		data := "0"
		if req.Data {
			data = "1"
		}
		env = append(env, "JECLOUD_DATA="+data) // remove the data too (jeagent destroy --data)
	}
	return env
}

// Dir lists the user hooks in dir: executable regular files, by name.
// Names starting with "." or ending in "~" (editor leftovers) are skipped.
// The agent runs hooks as root, so a hook (or dir) that someone other than
// its owner may change is refused with an error, as cron and sudo do.
func Dir(dir string, timeout time.Duration) ([]Hook, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	if err := trustedPath(dir); err != nil {
		return nil, err
	}
	var hooks []Hook
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || strings.HasSuffix(n, "~") {
			continue
		}
		p := filepath.Join(dir, n)
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("hook %s is a symbolic link, which the agent does not follow to a hook it runs as root: "+
				"copy the executable into %s instead", p, dir)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		if err := trustedComponent(p, p, fi, true); err != nil {
			return nil, err
		}
		hooks = append(hooks, Exec{Path: p, Timeout: timeout})
	}
	sort.Slice(hooks, func(i, j int) bool { return hooks[i].Name() < hooks[j].Name() })
	return hooks, nil
}

type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return len(p), nil
	}
	q := p
	if int64(len(q)) > l.n {
		q = q[:l.n]
	}
	l.n -= int64(len(q))
	l.w.Write(q)
	return len(p), nil
}

// readAllLimited reads at most maxStdout bytes of r (Serve's stdin).
func readAllLimited(r io.Reader) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, maxStdout))
}
