package routes

import (
	"bytes"
	"encoding/json"
	"strings"
)

// renderCaddy is Caddy's configuration behind HAProxy: one HTTP server on
// loopback (Backend) that answers what HAProxy does not send to an app's
// web instances (ACME challenges, the health path, the git webhook,
// maintenance pages, static sites, an app with no web process, the bare
// address with no default app), and the certificates of every host name,
// obtained and renewed by Caddy's ACME client over HTTP-01 (HAProxy ends
// TLS, so TLS-ALPN-01 cannot reach Caddy). HAProxy keeps the access log.
func renderCaddy(in Input, lay layout) []byte {
	var routes []any
	for _, s := range lay.sites {
		if len(s.hosts) == 0 {
			continue
		}
		if s.env.Git && in.Webhook != "" {
			// The git webhook, at its fixed path of each host name.
			routes = append(routes, obj{
				"match":    []any{obj{"host": s.hosts, "path": []string{webhookPath(s.env)}}},
				"handle":   []any{obj{"handler": "reverse_proxy", "upstreams": []any{obj{"dial": in.Webhook}}}},
				"terminal": true,
			})
		}
		// The health path, for a load balancer in front: never sent to the app.
		routes = append(routes, healthRoute(s.hosts, s.env, in.Draining))
		if !s.direct() {
			routes = append(routes, route(s.hosts, handler(s.env)))
		}
	}
	if lay.def != nil {
		routes = append(routes, healthRoute(nil, lay.def.env, in.Draining))
		if !lay.def.direct() {
			routes = append(routes, obj{"handle": []any{handler(lay.def.env)}, "terminal": true})
		}
	}
	if lay.def == nil || lay.def.direct() {
		routes = append(routes, obj{"handle": []any{obj{
			"handler": "static_response", "status_code": 404,
			"headers": obj{"Content-Type": []string{"text/plain; charset=utf-8"}},
			"body":    "No app is served at this address: ask for one of its host names.\n",
		}}, "terminal": true})
	}
	backend := or(in.Backend, BackendAddr)
	// Caddy answers ACME's HTTP-01 challenges on the server that listens
	// on its http_port: this one, which HAProxy sends them to.
	apps := obj{"http": obj{
		"http_port": port(backend, 80),
		"servers": obj{"backend": obj{
			"listen": []string{backend}, "routes": routes,
			"automatic_https": obj{"disable_redirects": true},
		}},
	}}
	if len(lay.tlsHosts) > 0 {
		ca := in.Proxy.ACME.CA
		if ca == "" {
			ca = LetsEncrypt
		}
		issuer := obj{"module": "acme", "ca": ca, "challenges": obj{"tls-alpn": obj{"disabled": true}}}
		if in.Proxy.ACME.Email != "" {
			issuer["email"] = in.Proxy.ACME.Email
		}
		if in.Proxy.ACME.CARoot != "" {
			issuer["trusted_roots_pem_files"] = []string{in.Proxy.ACME.CARoot}
		}
		apps["tls"] = obj{
			// Managed without a TLS server of Caddy's own: HAProxy serves them.
			"certificates": obj{"automate": lay.tlsHosts},
			"automation":   obj{"policies": []any{obj{"subjects": lay.tlsHosts, "issuers": []any{issuer}}}},
		}
	}
	cfg := obj{
		"admin":   obj{"listen": "unix/" + or(in.Admin, AdminSocket), "origins": []string{"localhost"}},
		"storage": obj{"module": "file_system", "root": or(in.Storage, StorageDir)},
		"apps":    apps,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(cfg); err != nil {
		panic(err) // maps of strings and slices always encode
	}
	return buf.Bytes()
}

type obj = map[string]any

// webhookPath is where e's git webhook is reached through its host names.
func webhookPath(e Env) string { return "/hooks/" + e.AppEnv.App + "/" + e.AppEnv.Env }

// healthRoute answers HealthPath for e on hosts (nil: any host).
func healthRoute(hosts []string, e Env, drainDir string) obj {
	m := obj{"path": []string{HealthPath}}
	if hosts != nil {
		m["host"] = hosts
	}
	text := func(code int, body string) obj {
		return obj{"handler": "static_response", "status_code": code,
			"headers": obj{"Content-Type": []string{"text/plain; charset=utf-8"}, "Cache-Control": []string{"no-store"}},
			"body":    body}
	}
	var answer []any
	if len(e.Upstreams.Web) == 0 && e.Upstreams.Static == "" {
		answer = []any{obj{"handle": []any{text(503, "no web process\n")}}}
	} else {
		answer = []any{
			obj{"match": []any{obj{"file": obj{"root": drainDir, "try_files": []string{"/" + markerName(e.AppEnv)}}}},
				"handle": []any{text(503, "draining\n")}, "terminal": true},
			obj{"handle": []any{text(200, "ok\n")}},
		}
	}
	return obj{"match": []any{m}, "handle": []any{obj{"handler": "subroute", "routes": answer}}, "terminal": true}
}

func route(hosts []string, h any) obj {
	return obj{"match": []any{obj{"host": hosts}}, "handle": []any{h}, "terminal": true}
}

// handler answers for one app environment that HAProxy sends to Caddy:
// a 503 in maintenance or with no web process, or its static site.
func handler(e Env) any {
	if e.Maintenance {
		page := e.Page
		ctype := "text/html; charset=utf-8"
		if page == nil {
			page = []byte("<!doctype html>\n<title>Down for maintenance</title>\n<h1>Down for maintenance</h1>\n<p>We will be back shortly.</p>\n")
		}
		return obj{
			"handler": "static_response", "status_code": 503,
			"headers": obj{"Content-Type": []string{ctype}, "Retry-After": []string{"120"}, "Cache-Control": []string{"no-store"}},
			"body":    literal(string(page)),
		}
	}
	if len(e.Upstreams.Web) == 0 && e.Upstreams.Static != "" {
		// A static site: the copy holds regular files and directories
		// only (no link leads out of it); no listing of a directory.
		return obj{"handler": "file_server", "root": e.Upstreams.Static}
	}
	// No web process (a site with one is HAProxy's: site.direct).
	return obj{
		"handler": "static_response", "status_code": 503,
		"headers": obj{"Content-Type": []string{"text/plain; charset=utf-8"}},
		"body":    e.AppEnv.String() + " has no web process running on this server.\n",
	}
}

// literal escapes Caddy's placeholders ({env.X}, {http.request.header.Y})
// in text from a bundle, so that a page is sent as written and cannot read
// the proxy's environment or the request's headers into the answer.
func literal(s string) string {
	return strings.NewReplacer("{", `\{`, "}", `\}`).Replace(s)
}
