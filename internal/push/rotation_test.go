package push

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jecloud/jecloud/internal/remote"
	"github.com/jecloud/jecloud/internal/remote/sshdtest"
)

// rotationLog is a Rotation that records its calls, and the deploys the
// servers had when each was made.
type rotationLog struct {
	mu      sync.Mutex
	roots   map[string]string
	events  []string
	failOut string // Out of this server fails
}

func (r *rotationLog) record(what string, t remote.Target) {
	r.mu.Lock()
	defer r.mu.Unlock()
	deploys := 0
	if root := r.roots[t.Dest]; root != "" {
		deploys = calls(nil, root, "deploy")
	}
	r.events = append(r.events, fmt.Sprintf("%s %s (%d deploys)", what, t.Dest, deploys))
}

func (r *rotationLog) Out(ctx context.Context, t remote.Target) error {
	r.record("out", t)
	if t.Dest == r.failOut {
		return errors.New("deregistering " + t.Dest + ": access denied")
	}
	return nil
}

func (r *rotationLog) In(ctx context.Context, t remote.Target) error {
	r.record("in", t)
	return nil
}

// TestPushRotation: with a load balancer in front, each web server is
// taken out before its deploy and put back after it, one at a time; a
// worker server is not touched; a server whose deploy failed is put back
// too; a server that cannot be taken out is not deployed to.
func TestPushRotation(t *testing.T) {
	e := newSSHEnv(t)
	for _, tc := range []struct {
		name    string
		fail    string // this server's deploy fails
		failOut string
		want    []string
		wantErr string
	}{
		{name: "rolling", want: []string{
			"out web1 (0 deploys)", "in web1 (1 deploys)", "out web2 (0 deploys)", "in web2 (1 deploys)"}},
		{name: "a failed deploy is put back", fail: "web1", want: []string{"out web1 (0 deploys)", "in web1 (1 deploys)"},
			wantErr: "out of disk space"},
		{name: "cannot take out", failOut: "web2", want: []string{
			"out web1 (0 deploys)", "in web1 (1 deploys)", "out web2 (0 deploys)"}, wantErr: "access denied: nothing was deployed on web2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			roots := map[string]string{}
			c, _, _ := e.client(t, roots, "web1", "web2", "web3")
			c.Targets[2].Role = "worker"
			c.Targets = []remote.Target{c.Targets[2], c.Targets[0], c.Targets[1]} // workers first, as for EC2
			if tc.fail != "" {
				sshdtest.WriteFile(t, filepath.Join(roots[tc.fail], "fail"), "out of disk space", 0o644)
			}
			rot := &rotationLog{roots: roots, failOut: tc.failOut}
			c.Rotation = rot
			err := c.Push(context.Background(), appDir(t), Options{})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
			if got := strings.Join(rot.events, ", "); got != strings.Join(tc.want, ", ") {
				t.Errorf("rotation:\n got %s\nwant %s", got, strings.Join(tc.want, ", "))
			}
			if calls(t, roots["web3"], "deploy") != 1 {
				t.Errorf("the worker server was not deployed to")
			}
		})
	}

	// Pushed again: the version is live on both, nothing switches, and
	// they stay in rotation (In only: registered if the balancer is new).
	roots := map[string]string{}
	c, _, _ := e.client(t, roots, "web1", "web2")
	dir := appDir(t)
	if err := c.Push(context.Background(), dir, Options{}); err != nil {
		t.Fatal(err)
	}
	rot := &rotationLog{roots: roots}
	c.Rotation = rot
	if err := c.Push(context.Background(), dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(rot.events, ", "), "in web1 (2 deploys), in web2 (2 deploys)"; got != want {
		t.Errorf("pushed again:\n got %s\nwant %s", got, want)
	}
	rot.events = nil
	if err := c.Push(context.Background(), dir, Options{Force: true}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(rot.events, ", "), "out web1 (2 deploys), in web1 (3 deploys), out web2 (2 deploys), in web2 (3 deploys)"; got != want {
		t.Errorf("pushed again with --force:\n got %s\nwant %s", got, want)
	}
}
