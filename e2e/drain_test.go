//go:build e2e

package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestNodeDrain checks the app's side of a zero-downtime restart
// (docs/node.md) on examples/hello/server.js, the contract's reference,
// with the host's Node.js and no server: the test holds the listening
// socket as systemd does and hands it over as fd 3. Each round puts 4
// keep-alive clients (one shared Transport, as the redeploy test's) in a
// loop, sends SIGTERM after 0.8 s, and starts the next process on the same
// socket once the old one has exited; the old one must exit within 3 s and
// no request may fail. A last round leaves a connection open without a
// request (a browser's preconnect), which must not hold the process either.
//
// JECLOUD_DRAIN_ROUNDS sets the rounds (default 40); JECLOUD_DRAIN_SCRIPT
// runs another server.js, to compare (docs/node.md gives both figures).
func TestNodeDrain(t *testing.T) {
	if os.Getenv("JECLOUD_E2E") == "" {
		t.Skip("set JECLOUD_E2E=1 (make e2e)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("no node on the PATH: the test runs the example app with the host's Node.js")
	}
	script := os.Getenv("JECLOUD_DRAIN_SCRIPT")
	if script == "" {
		script = filepath.Join(repoRoot(), "examples", "hello", "server.js")
	}
	rounds := 40
	if n, err := strconv.Atoi(os.Getenv("JECLOUD_DRAIN_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sock, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	url := "http://" + ln.Addr().String() + "/"

	start := func(version string) *exec.Cmd {
		cmd := exec.Command("node", script)
		cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "JECLOUD_VERSION="+version)
		cmd.ExtraFiles = []*os.File{sock} // fd 3
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	stop := func(cmd *exec.Cmd, within time.Duration) (time.Duration, bool) {
		t0 := time.Now()
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
			return time.Since(t0), true
		case <-time.After(within):
			cmd.Process.Kill()
			<-done
			return time.Since(t0), false
		}
	}

	var hung, failed, total int64
	var slowest time.Duration
	cur := start("v0")
	t.Cleanup(func() { // a process this test left, after a failure
		if cur.ProcessState == nil {
			cur.Process.Kill()
			cur.Wait()
		}
	})
	for r := 1; r <= rounds; r++ {
		transport := &http.Transport{}
		client := &http.Client{Timeout: 5 * time.Second, Transport: transport}
		ctx, cancel := context.WithCancel(t.Context())
		var ok, bad atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
					resp, err := client.Do(req)
					if err == nil {
						_, err = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					switch {
					case ctx.Err() != nil:
					case err != nil:
						bad.Add(1)
						t.Logf("round %d: request failed: %v", r, err)
					default:
						ok.Add(1)
					}
				}
			}()
		}
		time.Sleep(800 * time.Millisecond)
		took, exited := stop(cur, 3*time.Second)
		cur = start(fmt.Sprintf("v%d", r))
		time.Sleep(300 * time.Millisecond) // the next process serves what waited
		cancel()
		wg.Wait()
		transport.CloseIdleConnections()
		total += ok.Load() + bad.Load()
		failed += bad.Load()
		slowest = max(slowest, took)
		if !exited {
			hung++
			t.Errorf("round %d: the old process did not exit within 3 s of SIGTERM", r)
		}
	}

	// A connection opened and never used.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(200 * time.Millisecond)
	took, exited := stop(cur, 5*time.Second)
	if !exited {
		t.Errorf("a connection without a request kept the process running 5 s after SIGTERM")
	}
	if failed > 0 {
		t.Errorf("%d of %d requests failed", failed, total)
	}
	t.Logf("summary: drain of %s: %d rounds, %d hung past 3 s, %d of %d requests failed, slowest exit %s; with a connection never used: exit after %s",
		filepath.Base(filepath.Dir(script))+"/"+filepath.Base(script), rounds, hung, failed, total, slowest.Round(time.Millisecond), took.Round(time.Millisecond))
}
