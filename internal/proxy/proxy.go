// Package proxy is the front door: one Caddy per server, owned by the
// agent, on ports 80 and 443, routing each request by host name to an app
// environment's web instances, with certificates from ACME.
//
// The agent renders Caddy's whole configuration from /var/cloud (server.json's
// "proxy", each app environment's domains and maintenance flag in app.json,
// its upstreams.json) and loads it through Caddy's admin API on a Unix
// socket. A configuration Caddy refuses leaves the running one in place; the
// error carries Caddy's reason. Caddy keeps the last loaded configuration
// (--resume), so a restarted proxy comes back with every route.
// See docs/routing.md.
package proxy

import "errors"

// AdminSocket is where the proxy's admin API listens (systemd's
// RuntimeDirectory of jecloud-proxy.service, 0700).
const AdminSocket = "/run/jecloud-proxy/admin.sock"

// Unit is the proxy's systemd service.
const Unit = "jecloud-proxy.service"

// ErrNotRunning is returned when no proxy answers on the admin socket.
var ErrNotRunning = errors.New("the front door (" + Unit + ") is not running: run `jeagent init` to install it")

// Client talks to the proxy's admin API over its Unix socket.
type Client struct {
	// Socket is the admin API's Unix socket (AdminSocket on a server).
	Socket string
}

// Default is the server's proxy.
var Default = &Client{Socket: AdminSocket}

// StorageDir is where the proxy keeps its certificates and ACME accounts
// (Caddy's file_system storage; systemd's StateDirectory of Unit).
const StorageDir = "/var/lib/jecloud-proxy/data"

// AccessLogger is the name of ae's access log in the proxy's journal
// (Caddy's logger "http.log.access.APP_ENV").
func AccessLogger(app, env string) string { return "http.log.access." + app + "_" + env }
