package remote_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/bundle"
	"github.com/jecloud/jecloud/internal/remote"
	"github.com/jecloud/jecloud/internal/remote/sshdtest"
	"github.com/jecloud/jecloud/internal/state"
)

// cutter is a TCP proxy to an sshd whose connections the test can cut, as
// a network that drops would: both sides closed at once, mid-stream.
type cutter struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newCutter(t *testing.T, to string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln}
	t.Cleanup(func() { ln.Close(); c.cut() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", to)
			if err != nil {
				in.Close()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, in, out)
			c.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	return c
}

func (c *cutter) addr() string { return c.ln.Addr().String() }

// cut drops every connection through the proxy.
func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // a reset, not a goodbye
		}
		conn.Close()
	}
	c.conns = nil
}

// halfThenCut yields the first half of data, then cuts the connection and
// blocks until it is closed, as an upload does when the network drops.
type halfThenCut struct {
	data []byte
	off  int
	cut  func()
	once sync.Once
	stop chan struct{}
}

func (h *halfThenCut) Read(p []byte) (int, error) {
	if h.off >= len(h.data)/2 {
		h.once.Do(h.cut)
		<-h.stop
		return 0, io.ErrClosedPipe
	}
	n := copy(p, h.data[h.off:len(h.data)/2])
	h.off += n
	return n, nil
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSSHDroppedMidUploadAndDeploy runs the real jeagent behind a real sshd
// through a proxy that drops the connection: mid-upload, the server keeps
// nothing of the partial bundle (and `has` says it is missing); mid-deploy
// (a prepare hook running), the roll-forward, detached from the session,
// finishes the deployment anyway. A new connection then works.
func TestSSHDroppedMidUploadAndDeploy(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	agent := filepath.Join(t.TempDir(), "jeagent")
	if out, err := exec.Command("go", "build", "-o", agent, "../../agent").CombinedOutput(); err != nil {
		t.Fatalf("build jeagent: %v\n%s", err, out)
	}
	proxy := newCutter(t, s.Addr())
	home := s.Home(t, sshdtest.KnownHostsLine([]string{proxy.addr()}, s.HostKeys[0]))
	root := t.TempDir()
	if out, err := exec.Command(agent, "--root", root, "init").CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	l := state.Layout{Root: root}
	shop := state.AppEnv{App: "shop", Env: "prod"}
	// A prepare hook that takes a while, announced by a file.
	preparing := filepath.Join(root, "preparing")
	sshdtest.WriteFile(t, filepath.Join(l.HooksDir(), "10-slow"),
		fmt.Sprintf("#!/bin/sh\n[ \"$1\" = prepare ] && { touch %s; sleep 0.5; }\nexit 0\n", preparing), 0o755)
	src := t.TempDir()
	for i := 0; i < 40; i++ {
		sshdtest.WriteFile(t, filepath.Join(src, fmt.Sprintf("f%02d.js", i)), strings.Repeat(fmt.Sprintf("// file %d\n", i), 4000), 0o644)
	}
	var buf bytes.Buffer
	id, err := bundle.Write(src, &buf, bundle.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	target := remote.Target{Dest: fmt.Sprintf("%s@%s", s.User, proxy.addr()), Agent: agent, Root: root}
	ctx := context.Background()

	// Mid-upload.
	r, err := remote.Open(ctx, target, opts(home))
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var partial atomic.Bool
	in := &halfThenCut{data: data, stop: stop, cut: func() {
		// Cut once the server holds part of the upload.
		deadline := time.Now().Add(5 * time.Second)
		for !partial.Load() && time.Now().Before(deadline) {
			temps, _ := filepath.Glob(filepath.Join(l.Versions(shop), "."+id+".tar.zst.tmp-*"))
			if len(temps) == 1 {
				if fi, err := os.Stat(temps[0]); err == nil && fi.Size() > 0 {
					partial.Store(true)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		proxy.cut()
	}}
	var out, errb bytes.Buffer
	err = r.Run(ctx, []string{"receive", "shop", "prod", id}, in, &out, &errb)
	close(stop)
	r.Close()
	if !errors.Is(err, remote.ErrConnectionLost) {
		t.Fatalf("receive over a dropped connection: %v, want an error wrapping ErrConnectionLost\n%s%s", err, out.String(), errb.String())
	}
	if !partial.Load() {
		t.Fatal("the server never held part of the upload: the cut came too early to test anything")
	}
	// The receiving process sees the stream end early; nothing may stay.
	eventually(t, "the partial upload to be removed", func() bool {
		entries, err := os.ReadDir(l.Versions(shop))
		return err == nil && len(entries) == 0
	})
	if b, err := exec.Command(agent, "--root", root, "has", "shop", "prod", id).CombinedOutput(); err == nil {
		t.Fatalf("has after the dropped upload: exit 0: %s", b)
	}

	// A new connection: the whole upload, then a deploy dropped mid-prepare.
	r, err = remote.Open(ctx, target, opts(home))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(ctx, []string{"receive", "shop", "prod", id}, bytes.NewReader(data), io.Discard, io.Discard); err != nil {
		t.Fatalf("receive: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		done <- r.Run(ctx, []string{"deploy", "shop", "prod", id, "--wait"}, nil, io.Discard, io.Discard)
	}()
	eventually(t, "the prepare hook to start", func() bool { _, err := os.Stat(preparing); return err == nil })
	proxy.cut()
	if err := <-done; err == nil {
		t.Fatal("deploy --wait over a dropped connection returned no error")
	}
	r.Close()
	eventually(t, "the deployment to finish on the server", func() bool {
		var a state.App
		return state.Read(l.AppJSON(shop), &a) == nil && a.Deployment == nil && a.CurrentVersion == id
	})
	var a state.App
	state.Read(l.AppJSON(shop), &a)
	if live, _ := os.Readlink(l.Current(shop)); live != id || len(a.RecentFailedDeployments) != 0 {
		t.Fatalf("after the dropped deploy: current -> %s, failures %+v", live, a.RecentFailedDeployments)
	}

	// And the server answers a new connection.
	r, err = remote.Open(ctx, target, opts(home))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var st bytes.Buffer
	if err := r.Run(ctx, []string{"status", "--json"}, nil, &st, io.Discard); err != nil || !strings.Contains(st.String(), id) {
		t.Fatalf("status after the drops: %v\n%s", err, st.String())
	}
	t.Logf("summary: SSH dropped (TCP reset) mid-upload: client error wraps ErrConnectionLost, no partial bundle kept; mid-deploy: the deployment finished on the server; a new connection works")
}
