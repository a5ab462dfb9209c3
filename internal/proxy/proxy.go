// Package proxy runs the front door: one Caddy per server
// (jecloud-proxy.service), owned by the agent, on ports 80 and 443. Apply
// renders Caddy's whole configuration from /var/cloud (package routes)
// and loads it through Caddy's admin API on a Unix socket. A configuration
// Caddy refuses leaves the running one in place; the error carries Caddy's
// reason. Caddy keeps the last configuration it accepted (--resume), so a
// restarted proxy comes back with every route. See docs/routing.md.
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

// Unit is the proxy's systemd service.
const Unit = systemd.ProxyService

// ErrNotRunning is returned when no proxy answers on the admin socket.
var ErrNotRunning = errors.New("the front door (" + Unit + ") is not running: `systemctl status " + Unit + "` says why; `jeagent init` installs it")

// AccessLogger is the name of an app environment's access log in the
// proxy's journal (Caddy's logger "http.log.access.APP_ENV").
func AccessLogger(app, env string) string { return "http.log.access." + app + "_" + env }

// Client talks to the proxy's admin API over its Unix socket.
type Client struct {
	// Socket is the admin API's Unix socket (routes.AdminSocket on a server).
	Socket string
	// Adjust, when set, changes what Apply renders (tests run a proxy
	// elsewhere than on ports 80 and 443).
	Adjust func(*routes.Input)
}

// Default is the server's proxy.
var Default = &Client{Socket: routes.AdminSocket}

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
// the proxy has sent there and not yet seen answered. Upstreams that are
// being drained stay listed (routes keeps them configured).
func (c *Client) InFlight(ctx context.Context) (map[string]int, error) {
	b, err := c.do(ctx, http.MethodGet, "/reverse_proxy/upstreams", nil)
	if err != nil {
		return nil, err
	}
	var ups []struct {
		Address     string `json:"address"`
		NumRequests int    `json:"num_requests"`
	}
	if err := json.Unmarshal(b, &ups); err != nil {
		return nil, fmt.Errorf("the front door's upstreams: %w", err)
	}
	m := make(map[string]int, len(ups))
	for _, u := range ups {
		m[u.Address] = u.NumRequests
	}
	return m, nil
}

// Apply renders the configuration from the tree under l and loads it,
// then records it as applied (routes.AppliedFile). The notes say what
// could not be routed (a host claimed twice); they are not errors.
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
	if err := c.Load(ctx, cfg); err != nil {
		return notes, err
	}
	if err := os.MkdirAll(routes.Dir(l), 0o755); err != nil {
		return notes, err
	}
	if err := routes.Record(l, in); err != nil {
		return notes, err
	}
	return notes, atomicfile.WriteFile(routes.AppliedFile(l), cfg, 0o644)
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
