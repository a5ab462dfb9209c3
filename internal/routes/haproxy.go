package routes

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// AccessLogger starts the "logger" of each access-log line: the app
// environment's name (APP_ENV) follows, or "-" for a request no app
// environment took. Caddy named its access logs so, and the lines keep the
// shape they had when Caddy wrote them.
const AccessLogger = "http.log.access."

// renderHAProxy is HAProxy's configuration: ports 80 and 443 (443 once a
// certificate is issued), each host name's requests straight to its app
// environment's web instances (round robin; an instance that refuses
// connections is skipped and the request tried on another), everything
// else to Caddy on loopback, HTTP redirected to HTTPS for the names that
// have a certificate, and one access-log line a request in the journal,
// starting with the app environment's name (APP_ENV).
//
// Every value in it comes from names.Check (app and environment names),
// names.CheckHost (host names, in Render's plan), checkUpstream (loopback
// addresses) or CertFileIn (paths under Caddy's storage): none holds a
// space, a quote or a newline.
func renderHAProxy(in Input, lay *layout) []byte {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("# The front door's data path (docs/routing.md): written by jeagent from")
	w("# /var/cloud at each change; a hand edit is replaced at the next one.")
	w("global")
	if u := or(in.User, "haproxy"); u != "-" {
		w("    user %s", u)
		w("    group %s", u)
	}
	w("    log %s len 8192 local0 info", or(in.Log, JournalSocket))
	// Requests still in flight when a reload's old worker is done with
	// them; the node hook waits for them (at most the web type's grace).
	w("    hard-stop-after 15m")
	// Caddy keeps HOST.crt and HOST.key: HAProxy looks for HOST.key.
	w("    ssl-load-extra-del-ext")
	w("    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets")
	w("")
	w("defaults")
	w("    mode http")
	w("    log global")
	w("    option dontlognull")
	// One JSON object a request, in the shape of Caddy's access log
	// (package accesslog reads it; `jepush logs --proxy --json` prints it):
	// the host and URI escaped by HAProxy's json converter.
	w("    log-format %s", strconv.Quote(`{"level":"info","ts":%Ts.%ms,"logger":"`+AccessLogger+`%[var(txn.site)]","msg":"handled request",`+
		`"request":{"remote_ip":"%ci","remote_port":"%cp","proto":"%HV","method":"%HM","host":"%[capture.req.hdr(0),json(utf8s)]","uri":"%[capture.req.uri,json(utf8s)]"},`+
		`"duration_ms":%Ta,"size":%B,"status":%ST,"upstream":"%b/%s","termination":"%tsc"}`))
	// Apps see the client's address and scheme as behind Caddy: the
	// headers a client sent are replaced.
	w("    option forwardfor")
	w("    timeout connect 2s")
	w("    timeout client 5m")
	w("    timeout server 5m")
	w("    timeout http-request 30s")
	w("    timeout http-keep-alive 60s")
	w("    timeout tunnel 1h")
	w("    timeout queue 10s")
	w("    timeout client-fin 30s")
	// An instance that refuses the connection (it crashed and systemd
	// restarts it): the request is tried again, on another one when there
	// is one, for about 5 s.
	w("    retries 5")
	w("    option redispatch 1")
	w("")

	// The certificates HAProxy serves, and a digest of each: a renewal
	// changes this file, so the planner reloads HAProxy with it.
	var certs []string
	issued := map[string]bool{}
	for _, h := range lay.tlsHosts {
		if in.CertFile == nil {
			break
		}
		if f := in.CertFile(h); f != "" {
			if !cfgToken(f) {
				// Caddy names the directory after the CA's URL (server.json):
				// nothing from it goes into the file unchecked.
				lay.notes = append(lay.notes, fmt.Sprintf("%s: its certificate %q is not served: its path holds a character HAProxy's configuration cannot take", h, f))
				continue
			}
			certs = append(certs, f)
			issued[h] = true
			w("# certificate %s %s", h, digest(f))
		}
	}
	frontend := func(name, listen string, tls bool) {
		w("frontend %s", name)
		if tls {
			bind := "    bind " + listen + " ssl"
			for _, f := range certs {
				bind += " crt " + f
			}
			w("%s alpn h2,http/1.1", bind)
		} else {
			w("    bind %s", listen)
		}
		for _, s := range lay.sites {
			if len(s.hosts) > 0 {
				w("    http-request set-var(txn.site) str(%s) if { req.hdr(host),field(1,:),lower -m str %s }", s.name(), strings.Join(s.hosts, " "))
			}
		}
		if lay.def != nil {
			w("    http-request set-var(txn.site) str(%s) if !{ var(txn.site) -m found }", lay.def.name())
		}
		w("    http-request set-var(txn.site) str(-) if !{ var(txn.site) -m found }")
		w("    http-request capture req.hdr(host) len 255")
		w("    acl acme path_beg /.well-known/acme-challenge/")
		w("    acl health path %s", HealthPath)
		w("    http-request set-log-level silent if health")
		w("    http-request del-header X-Forwarded-For")
		if tls {
			w("    http-request set-header X-Forwarded-Proto https")
		} else {
			var redirect []string
			for _, h := range lay.tlsHosts {
				if issued[h] {
					redirect = append(redirect, h)
				}
			}
			if len(redirect) > 0 {
				// Not what a load balancer that ended the client's TLS
				// sends on (X-Forwarded-Proto: https, as an ALB's HTTPS
				// listener does): redirecting it would loop (docs/routing.md).
				w("    http-request redirect scheme https code 308 if { req.hdr(host),field(1,:),lower -m str %s } !acme !health !{ req.hdr(x-forwarded-proto) -m str https }", strings.Join(redirect, " "))
			}
			w("    http-request set-header X-Forwarded-Proto http")
		}
		w("    http-request set-header X-Forwarded-Host %%[req.hdr(host)]")
		w("    use_backend caddy if acme || health")
		for _, s := range lay.sites {
			if s.env.Git && in.Webhook != "" && len(s.hosts) > 0 {
				w("    use_backend caddy if { var(txn.site) -m str %s } { path %s }", s.name(), webhookPath(s.env))
			}
		}
		for _, s := range lay.sites {
			if s.direct() {
				w("    use_backend site_%s if { var(txn.site) -m str %s }", s.name(), s.name())
			}
		}
		w("    default_backend caddy")
		w("")
	}
	frontend("http", or(in.HTTP, ":80"), false)
	if len(certs) > 0 {
		frontend("https", or(in.HTTPS, ":443"), true)
	}
	w("backend caddy")
	w("    server caddy %s", or(in.Backend, BackendAddr))
	for _, s := range lay.sites {
		if !s.direct() {
			continue
		}
		w("")
		w("backend site_%s", s.name())
		w("    balance roundrobin")
		for _, a := range s.env.Upstreams.Web {
			w("    server p%d %s check inter 2s fall 2 rise 1 observe layer4 error-limit 1 on-error mark-down", port(a, 0), a)
		}
	}
	return []byte(b.String())
}

// cfgToken reports whether s can be written into HAProxy's configuration
// as one word: an absolute path of letters, digits and ._-@/ only (no
// space, quote, #, $, % or newline, which HAProxy would read as syntax).
func cfgToken(s string) bool {
	if !strings.HasPrefix(s, "/") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@/", r)) {
			return false
		}
	}
	return true
}

// digest names a certificate file's content ("" if it cannot be read).
func digest(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, 1<<20)); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
