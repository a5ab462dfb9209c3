// Package proxy runs the front door, owned by the agent: HAProxy on ports
// 80 and 443 (jecloud-haproxy.service: TLS, routing by host name, the
// app's requests straight to its web instances, the access log) and Caddy
// behind it on loopback (jecloud-proxy.service: ACME certificates, static
// sites, maintenance pages, the health path, the git webhook). Apply
// renders both configurations from /var/cloud (package routes), has
// HAProxy check its own, loads Caddy's through its admin API on a Unix
// socket, then writes HAProxy's and reloads it through its master CLI
// (requests in flight finish in the old worker). A configuration either
// refuses leaves the running ones in place; the error carries its reason.
// Both start from the files Apply wrote last, so a restarted front door
// comes back with every route. See docs/routing.md.
package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/routes"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/jecloud/jecloud/systemd"
)

// Unit is Caddy's systemd service, HAProxyUnit HAProxy's.
const (
	Unit        = systemd.ProxyService
	HAProxyUnit = systemd.HAProxyService
)

// ErrNotRunning is returned when Caddy does not answer on its admin socket.
var ErrNotRunning = errors.New("the front door (" + Unit + ") is not running: `systemctl status " + Unit + "` says why; `jeagent init` installs it")

// AccessLogger is the name of an app environment's access log in
// HAProxy's journal ("http.log.access.APP_ENV", as Caddy named it).
func AccessLogger(app, env string) string { return routes.AccessLogger + app + "_" + env }

// Client drives the front door: Caddy's admin API over its Unix socket
// and HAProxy's master CLI.
type Client struct {
	// Socket is Caddy's admin API's Unix socket (routes.AdminSocket on a server).
	Socket string
	// HAProxy is HAProxy's master CLI.
	HAProxy *HAProxy
	// HAProxyFile is where HAProxy reads its configuration; "" is
	// routes.HAProxyFile (tests run one elsewhere).
	HAProxyFile string
	// Adjust, when set, changes what Apply renders (tests run a front
	// door elsewhere than on ports 80 and 443).
	Adjust func(*routes.Input)
}

// Default is the server's front door.
var Default = &Client{Socket: routes.AdminSocket, HAProxy: &HAProxy{Master: routes.MasterSocket}}

func (c *Client) http() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", c.Socket)
		},
	}}
}

// do sends one request to the admin API. Caddy checks the Host of
// requests on its socket: the configuration allows "localhost".
func (c *Client) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://localhost"+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http().Do(req)
	if err != nil {
		if op := (*net.OpError)(nil); errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("%w (%v)", ErrNotRunning, op.Err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, errors.New(e.Error)
		}
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

// Load makes cfg the proxy's configuration. On refusal the running one
// stays, and the error is Caddy's reason.
func (c *Client) Load(ctx context.Context, cfg []byte) error {
	_, err := c.do(ctx, http.MethodPost, "/load", cfg)
	if err != nil && !errors.Is(err, ErrNotRunning) {
		return fmt.Errorf("the front door refused the new configuration and keeps the running one: %w", err)
	}
	return err
}

// Config returns the configuration the proxy runs.
func (c *Client) Config(ctx context.Context) ([]byte, error) {
	return c.do(ctx, http.MethodGet, "/config/", nil)
}

// InFlight returns, per upstream address ("127.0.0.1:PORT"), the requests
// HAProxy has sent there and not yet seen answered, in its current worker
// and in the old ones that finish theirs after a reload.
func (c *Client) InFlight(ctx context.Context) (map[string]int, error) {
	return c.HAProxy.InFlight(ctx)
}

// Apply renders the configuration from the tree under l and applies it:
// HAProxy checks its part first (a refusal changes nothing), Caddy loads
// its own, then HAProxy's file is written and HAProxy reloaded. It records
// what was applied (routes.AppliedFile, routes.HAProxyFile). The notes say
// what could not be routed (a host claimed twice); they are not errors.
func (c *Client) Apply(ctx context.Context, l state.Layout) ([]string, error) {
	in, err := routes.Read(l)
	if err != nil {
		return nil, err
	}
	if c.Adjust != nil {
		c.Adjust(&in)
	}
	cfg, notes := routes.Render(in)
	storage := in.Storage
	if storage == "" {
		storage = routes.StorageDir
	}
	notes = append(notes, RepairAccounts(storage, time.Now())...)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := os.MkdirAll(routes.Dir(l), 0o755); err != nil {
		return notes, err
	}
	applied := routes.Applied(l)
	hfile := c.HAProxyFile
	if hfile == "" {
		hfile = routes.HAProxyFile(l)
	}
	prev, _ := os.ReadFile(hfile)
	newHAProxy := !bytes.Equal(prev, cfg.HAProxy)
	if newHAProxy {
		if err := c.check(ctx, hfile, cfg.HAProxy); err != nil {
			return notes, fmt.Errorf("the front door (%s) refused the new configuration and keeps the running one: %w", HAProxyUnit, err)
		}
	}
	if !bytes.Equal(cfg.Caddy, applied.Caddy) {
		if err := c.Load(ctx, cfg.Caddy); err != nil {
			return notes, err
		}
		if err := atomicfile.WriteFile(routes.AppliedFile(l), cfg.Caddy, 0o644); err != nil {
			return notes, err
		}
	}
	if newHAProxy {
		if err := atomicfile.WriteFile(hfile, cfg.HAProxy, 0o644); err != nil {
			return notes, err
		}
		if err := c.HAProxy.Reload(ctx); err != nil {
			if errors.Is(err, ErrHAProxyNotRunning) {
				// systemd starts it again from the file just written.
				return notes, fmt.Errorf("the front door (%s) is not running: `systemctl status %s` says why; `jeagent init` installs it (%w)", HAProxyUnit, HAProxyUnit, err)
			}
			// What a restart loads stays what runs.
			if prev != nil {
				atomicfile.WriteFile(hfile, prev, 0o644)
			}
			return notes, fmt.Errorf("the front door (%s) refused the new configuration and keeps the running one: %w", HAProxyUnit, err)
		}
	}
	return notes, routes.Record(l, in)
}

// check has HAProxy check cfg, written beside file.
func (c *Client) check(ctx context.Context, file string, cfg []byte) error {
	if _, err := os.Stat(c.HAProxy.bin()); err != nil {
		// A jeagent upgraded without `jeagent init` (the .deb runs it).
		return fmt.Errorf("HAProxy is not installed (%w): `jeagent init` installs it and moves the front door onto it", err)
	}
	tmp := file + ".check"
	if err := os.WriteFile(tmp, cfg, 0o600); err != nil {
		return err
	}
	defer os.Remove(tmp)
	return c.HAProxy.Check(ctx, tmp)
}

// RepairAccounts removes the ACME accounts in the proxy's file storage
// whose registration file does not parse (routes.BrokenAccounts), and says
// which. Caddy registers a new account at its next attempt.
func RepairAccounts(storage string, now time.Time) []string {
	var notes []string
	for _, dir := range routes.BrokenAccounts(storage, now) {
		if err := os.RemoveAll(dir); err != nil {
			notes = append(notes, fmt.Sprintf("the front door's ACME account %s is broken (its file does not parse) and could not be removed: %v; remove that directory by hand", dir, err))
			continue
		}
		notes = append(notes, fmt.Sprintf("removed the front door's broken ACME account %s (its file did not parse); Caddy registers a new one at its next order", dir))
	}
	return notes
}
