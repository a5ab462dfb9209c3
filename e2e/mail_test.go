//go:build e2e

package e2e_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/jecloud/jecloud/internal/lab"
)

// mailerJS is the test app: Node.js without dependencies. POST /send?id=N
// sends one message through SMTP_URL in plain SMTP over net (no library),
// and answers with the relay's last reply ("250 2.0.0 Ok: queued as ...").
const mailerJS = `const http = require("http");
const net = require("net");
function send(id, cb) {
  const u = new URL(process.env.SMTP_URL);
  const c = net.connect(+u.port, u.hostname);
  const msg = [
    "From: Shop <orders@shop.example>",
    "To: Customer <customer@example.net>",
    "Subject: Your order " + id,
    "Message-ID: <order-" + id + "@shop.example>",
    "Date: " + new Date().toUTCString(),
    "X-Order-Id: " + id,
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "",
    "Thank you for order " + id + ".",
    ".leading dot stays",
    "",
  ].join("\r\n");
  const steps = ["EHLO shop\r\n", "MAIL FROM:<orders@shop.example>\r\n", "RCPT TO:<customer@example.net>\r\n", "DATA\r\n",
    msg.replace(/\r\n\./g, "\r\n..") + "\r\n.\r\n", "QUIT\r\n"];
  let buf = "", last = "", done = false;
  const finish = (err) => { if (!done) { done = true; c.destroy(); cb(err, last); } };
  c.on("error", finish);
  c.on("data", (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf("\r\n")) >= 0) {
      const line = buf.slice(0, i); buf = buf.slice(i + 2);
      if (line[3] === "-") continue; // a continued reply
      if (!/^[23]/.test(line)) return finish(new Error(line));
      if (/^250 .*queued/i.test(line)) last = line;
      const next = steps.shift();
      if (next === undefined) return finish(null);
      c.write(next);
    }
  });
}
const server = http.createServer((req, res) => {
  if (req.url === "/healthz") { res.end("ok\n"); return; }
  const id = new URL(req.url, "http://x").searchParams.get("id");
  if (!id) { res.writeHead(404); res.end(); return; }
  send(id, (err, reply) => {
    if (err) { res.writeHead(502); res.end(String(err) + "\n"); return; }
    res.end(reply + "\n");
  });
});
` + serveJS

// TestMail deploys an app that declares mail to a real Debian server and
// sends its messages through the server's relay (Postfix) to a real SMTP
// server on this host standing in for the provider (go-smtp: STARTTLS
// with a self-signed certificate, AUTH PLAIN required). It checks that a
// message arrives with its headers intact, that mail sent while the
// provider is down stays queued, shows in `jeagent status`, survives a
// restart of Postfix and is delivered when the provider is back, and that
// an app that stops declaring mail loses its listener.
func TestMail(t *testing.T) {
	t.Parallel() // mostly waiting (docs/lab.md: lab tests in parallel)
	lab.Require(t)
	jeagent, jepush := binaries(t)
	srv := lab.BootWith(t, 1, lab.Options{Persistent: true})[0] // it reboots with mail queued
	if err := srv.CopyIn(jeagent, "/usr/local/bin/jeagent"); err != nil {
		t.Fatal(err)
	}
	srv.MustExec("jeagent", "init")
	nodeVersion := installMirror(t, srv)
	srv.WriteFile("/var/cloud/sys/server.json", []byte(`{"node": {"mirror": "/srv/node-mirror"}}`+"\n"), 0o640)

	prov := startProvider(t, srv.HostAddr.String(), "relayuser", "s3cret:with spaces&?")
	dir := t.TempDir()
	toml := "app = \"mailer\"\n[services]\nmail = \"\"\n[web]\nhealth = \"/healthz\"\n"
	writeFiles(t, dir, map[string]string{
		"package.json": `{"name": "mailer", "engines": {"node": "` + strings.Split(nodeVersion, ".")[0] + `.x"}, "scripts": {"start": "node server.js"}}`,
		"server.js":    mailerJS,
		"Procfile":     "web: node server.js\n",
		"jecloud.toml": toml,
	})
	push := jepushTo(t, jepush, srv)

	// Without a provider the deploy fails, saying what to set.
	if code, out := push(dir, "prod"); code == 0 || !strings.Contains(out, "MAIL_RELAY_URL") {
		t.Fatalf("a push without a provider: exit %d\n%s", code, out)
	}
	// The stand-in's certificate is self-signed: the relay checks
	// certificates by default, and tls=encrypt is the opt-out.
	verifiedURL := "smtp://relayuser:" + urlEscape(prov.pass) + "@" + prov.addr
	relayURL := verifiedURL + "?tls=encrypt"
	if code, out := push("config:set", "prod", "MAIL_RELAY_URL="+relayURL, "--dir", dir); code != 0 {
		t.Fatalf("config:set: exit %d\n%s", code, out)
	}
	start := time.Now()
	if code, out := push(dir, "prod"); code != 0 {
		t.Fatalf("push: exit %d\n%s\n%s", code, out, srv.MustExec("journalctl", "-n", "60", "--no-pager"))
	}
	t.Logf("push with mail (Postfix set up, listener answering): %s", time.Since(start).Round(time.Millisecond))

	// Postfix runs with limits like the app units' (issue #17), and is
	// scored like them.
	limits := srv.MustExec("systemctl", "show", "-p", "TasksMax", "-p", "MemoryMax", "-p", "CPUWeight", "-p", "ActiveState", "postfix@-.service")
	for _, w := range []string{"TasksMax=512", "CPUWeight=50", "ActiveState=active"} {
		contains(t, "postfix@-.service", limits, w)
	}
	if strings.Contains(limits, "MemoryMax=infinity") {
		t.Errorf("postfix@-.service has no MemoryMax:\n%s", limits)
	}
	if out, _ := srv.Exec(t.Context(), "systemd-analyze", "security", "--no-pager", "postfix@-.service"); out != "" {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		t.Logf("| postfix@-.service (Debian's, with JeCloud's limits) | %s |", strings.TrimPrefix(strings.TrimSpace(lines[len(lines)-1]), "→ Overall exposure level for postfix@-.service: "))
	}

	smtpURL := serviceVar(t, srv, "/var/cloud/mailer/prod/services.env", "SMTP_URL")
	contains(t, "SMTP_URL", smtpURL, "smtp://127.0.0.1:")
	// Secrets: the password map is root-only, and the password is nowhere
	// world-readable.
	contains(t, "password map", srv.MustExec("stat", "-c", "%a %U", "/etc/postfix/jecloud/jecloud-mailer_prod.sasl", "/etc/postfix/jecloud/jecloud-mailer_prod.sasl.db"),
		"600 root\n600 root")
	for _, f := range []string{"/etc/postfix/master.cf", "/etc/postfix/main.cf", "/etc/postfix/jecloud/jecloud-mailer_prod.master.cf",
		"/etc/postfix/jecloud/jecloud-mailer_prod.json", "/var/cloud/mailer/prod/app.json"} {
		if b, _ := srv.ReadFile(f); strings.Contains(string(b), "s3cret") {
			t.Errorf("%s holds the provider's password", f)
		}
	}
	if out := srv.MustExec("jeagent", "status"); strings.Contains(out, "s3cret") {
		t.Errorf("status shows the password:\n%s", out)
	}
	// Postfix listens on loopback only.
	if ss := srv.MustExec("ss", "-Hltn"); strings.Contains(ss, "0.0.0.0:25 ") || strings.Contains(ss, "*:25 ") {
		t.Errorf("postfix listens beyond loopback:\n%s", ss)
	}

	web := "http://" + srv.Addr.String() + "/" // the front door: the only app on the server
	send := func(id string) string {
		t.Helper()
		c := &http.Client{Timeout: 30 * time.Second}
		resp, err := c.Post(web+"send?id="+id, "text/plain", nil)
		if err != nil {
			t.Fatalf("send %s: %v", id, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(b), "queued as") {
			t.Fatalf("send %s: %s: %s", id, resp.Status, b)
		}
		return strings.TrimSpace(string(b))
	}

	// 1. A message arrives with its headers intact, over TLS, logged in.
	start = time.Now()
	t.Logf("app: %s", send("1001"))
	m := prov.wait(t, "1001", 30*time.Second)
	t.Logf("message 1001 reached the provider in %s", time.Since(start).Round(time.Millisecond))
	checkMessage(t, m, "1001")
	if !m.tls || m.user != "relayuser" {
		t.Errorf("message 1001 came in with tls=%v user=%q: want STARTTLS and AUTH as relayuser", m.tls, m.user)
	}
	eventually(t, 15*time.Second, "status shows the delivery", func() bool {
		st := mailStatus(t, srv)
		return st.LastSent != "" && st.Queued == 0
	})
	t.Logf("jeagent status:\n%s", srv.MustExec("jeagent", "status", "mailer", "prod"))

	// 2. The provider is down: the message stays queued, and status says why.
	prov.stop()
	t.Logf("app, provider down: %s", send("1002"))
	eventually(t, 30*time.Second, "status shows the deferred message", func() bool {
		st := mailStatus(t, srv)
		return st.Deferred == 1 && st.LastFailure != nil && strings.Contains(st.LastFailure.Reason, "refused")
	})
	text := srv.MustExec("jeagent", "status", "mailer", "prod")
	contains(t, "status, provider down", text, "mail queue: 1 message(s), 1 deferred", "DEFERRED", "mail FAIL:", "Connection refused")
	t.Logf("jeagent status, provider down:\n%s", text)

	// 3. The queue survives a restart of Postfix, and a reboot of the
	// server, after which the relay is back by itself.
	srv.MustExec("systemctl", "restart", "postfix")
	if st := mailStatus(t, srv); st.Queued != 1 {
		t.Fatalf("after a restart of postfix the queue has %d message(s), want 1", st.Queued)
	}
	rebootAt := time.Now()
	if err := srv.Reboot(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the relay to listen again after the reboot", func() bool {
		out, _ := srv.Exec(t.Context(), "ss", "-Hltn")
		return strings.Contains(out, strings.TrimPrefix(smtpURL, "smtp://")+" ")
	})
	t.Logf("relay listening again %.1fs after the reboot began", time.Since(rebootAt).Seconds())
	if st := mailStatus(t, srv); st.Queued != 1 || st.Deferred != 1 {
		t.Fatalf("after a reboot the queue has %d message(s) (%d deferred), want 1", st.Queued, st.Deferred)
	}
	// 4. The provider is back: a flush delivers it.
	prov.restart(t)
	start = time.Now()
	srv.MustExec("postqueue", "-f")
	m = prov.wait(t, "1002", 60*time.Second)
	t.Logf("queued message 1002 delivered %s after postqueue -f", time.Since(start).Round(time.Millisecond))
	checkMessage(t, m, "1002")
	eventually(t, 15*time.Second, "the queue empties", func() bool {
		st := mailStatus(t, srv)
		return st.Queued == 0 && st.LastFailure == nil
	})

	// 5. A provider that refuses the message for now (451): deferred with
	// its answer in status.
	prov.refuse(true)
	send("1003")
	eventually(t, 30*time.Second, "status shows the provider's refusal", func() bool {
		st := mailStatus(t, srv)
		return st.Deferred == 1 && st.LastFailure != nil && strings.Contains(st.LastFailure.Reason, "try again later")
	})
	t.Logf("jeagent status, provider refusing:\n%s", srv.MustExec("jeagent", "status", "mailer", "prod"))
	prov.refuse(false)
	srv.MustExec("postqueue", "-f")
	checkMessage(t, prov.wait(t, "1003", 60*time.Second), "1003")

	// 6. A wrong password, set with config:set (whose restart applies it):
	// the provider refuses the login, status and jepush status say so; the
	// right one set again delivers the message.
	wrong := "smtp://relayuser:wrong@" + prov.addr + "?tls=encrypt"
	if code, out := push("config:set", "prod", "MAIL_RELAY_URL="+wrong, "--dir", dir); code != 0 {
		t.Fatalf("config:set: exit %d\n%s", code, out)
	}
	send("1004")
	eventually(t, 30*time.Second, "status shows the refused login", func() bool {
		st := mailStatus(t, srv)
		return st.Deferred == 1 && st.LastFailure != nil && strings.Contains(st.LastFailure.Reason, "authentication failed")
	})
	code, out := push("status", "prod", "--dir", dir)
	contains(t, "jepush status", out, "mail", "1 queued, 1 deferred", "authentication failed")
	t.Logf("jepush status, wrong password (exit %d):\n%s", code, out)
	if code, out := push("config:set", "prod", "MAIL_RELAY_URL="+relayURL, "--dir", dir); code != 0 {
		t.Fatalf("config:set: exit %d\n%s", code, out)
	}
	srv.MustExec("postqueue", "-f")
	checkMessage(t, prov.wait(t, "1004", 60*time.Second), "1004")

	// By default (no tls=) the provider's certificate is checked: the
	// stand-in's self-signed one is refused, and the message waits.
	if code, out := push("config:set", "prod", "MAIL_RELAY_URL="+verifiedURL, "--dir", dir); code != 0 {
		t.Fatalf("config:set: exit %d\n%s", code, out)
	}
	send("1005")
	eventually(t, 30*time.Second, "status shows the untrusted certificate", func() bool {
		st := mailStatus(t, srv)
		return st.Deferred == 1 && st.LastFailure != nil && strings.Contains(st.LastFailure.Reason, "certificate")
	})
	t.Logf("default (tls=secure) with a self-signed certificate: %s", mailStatus(t, srv).LastFailure.Reason)
	prov.mu.Lock()
	_, leaked := prov.got["1005"]
	prov.mu.Unlock()
	if leaked {
		t.Error("message 1005 went to a provider whose certificate is not trusted")
	}
	if code, out := push("config:set", "prod", "MAIL_RELAY_URL="+relayURL, "--dir", dir); code != 0 {
		t.Fatalf("config:set: exit %d\n%s", code, out)
	}
	srv.MustExec("postqueue", "-f")
	checkMessage(t, prov.wait(t, "1005", 60*time.Second), "1005")

	// 7. A change of provider while mail waits for the old one: the
	// restart that applies it re-sends the waiting mail to the new one.
	prov.stop()
	send("1006")
	eventually(t, 30*time.Second, "message 1006 deferred", func() bool { return mailStatus(t, srv).Deferred == 1 })
	prov2 := startProvider(t, srv.HostAddr.String(), "otheruser", "other-password")
	start = time.Now()
	if code, out := push("config:set", "prod", "MAIL_RELAY_URL=smtp://otheruser:other-password@"+prov2.addr+"?tls=encrypt", "--dir", dir); code != 0 {
		t.Fatalf("config:set: exit %d\n%s", code, out)
	} else {
		contains(t, "config:set to a new provider", out, "1 queued message(s) re-sent through the new provider")
	}
	m = prov2.wait(t, "1006", 60*time.Second)
	t.Logf("message 1006, queued for the old provider, reached the new one %s after config:set began", time.Since(start).Round(time.Millisecond))
	checkMessage(t, m, "1006")
	if m.user != "otheruser" {
		t.Errorf("message 1006 came in as %q", m.user)
	}
	eventually(t, 15*time.Second, "the queue empties", func() bool { return mailStatus(t, srv).Queued == 0 })

	// 8. The app stops declaring mail: its listener and transport go.
	port := strings.TrimPrefix(smtpURL, "smtp://127.0.0.1:")
	writeFiles(t, dir, map[string]string{"jecloud.toml": strings.Replace(toml, "mail = \"\"\n", "", 1)})
	if code, out := push(dir, "prod"); code != 0 {
		t.Fatalf("push without mail: exit %d\n%s", code, out)
	}
	if master := srv.MustExec("cat", "/etc/postfix/master.cf"); strings.Contains(master, "jecloud-mailer_prod") {
		t.Errorf("master.cf still has the environment:\n%s", master)
	}
	eventually(t, 10*time.Second, "the listener closes", func() bool {
		return !strings.Contains(srv.MustExec("ss", "-Hltn"), "127.0.0.1:"+port+" ")
	})
	if b, _ := srv.ReadFile("/var/cloud/mailer/prod/services.env"); strings.Contains(string(b), "SMTP_URL") {
		t.Errorf("services.env still has SMTP_URL:\n%s", b)
	}
	if out := srv.MustExec("jeagent", "status", "mailer", "prod"); strings.Contains(out, "mail:") {
		t.Errorf("status still shows mail:\n%s", out)
	}
}

func urlEscape(s string) string {
	r := strings.NewReplacer("%", "%25", ":", "%3A", " ", "%20", "&", "%26", "?", "%3F", "@", "%40", "/", "%2F", "#", "%23")
	return r.Replace(s)
}

// checkMessage checks that message id came through as the app wrote it.
func checkMessage(t *testing.T, m received, id string) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(m.data)))
	if err != nil {
		t.Fatalf("message %s does not parse: %v\n%s", id, err, m.data)
	}
	h := msg.Header
	for k, want := range map[string]string{
		"From": "Shop <orders@shop.example>", "To": "Customer <customer@example.net>",
		"Subject": "Your order " + id, "Message-Id": "<order-" + id + "@shop.example>", "X-Order-Id": id,
	} {
		if got := h.Get(k); got != want {
			t.Errorf("message %s: %s: %q, want %q\n%s", id, k, got, want, m.data)
		}
	}
	body, _ := io.ReadAll(msg.Body)
	if !strings.Contains(string(body), "Thank you for order "+id+".\r\n.leading dot stays") {
		t.Errorf("message %s: body %q", id, body)
	}
	if m.from != "orders@shop.example" || len(m.to) != 1 || m.to[0] != "customer@example.net" {
		t.Errorf("message %s: envelope from %q to %v", id, m.from, m.to)
	}
}

// statusMail is the mail part of `jeagent status --json`.
type statusMail struct {
	Listen      string `json:"listen"`
	Queued      int    `json:"queued"`
	Deferred    int    `json:"deferred"`
	LastSent    string `json:"last_sent"`
	LastFailure *struct {
		Status, Reason string
	} `json:"last_failure"`
	Error string `json:"error"`
}

func mailStatus(t *testing.T, srv *lab.Server) statusMail {
	t.Helper()
	var st struct {
		Apps []struct {
			Mail *statusMail `json:"mail"`
		} `json:"apps"`
	}
	out := srv.MustExec("jeagent", "status", "--json", "mailer", "prod")
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Apps) != 1 || st.Apps[0].Mail == nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if st.Apps[0].Mail.Error != "" {
		t.Logf("status: mail error: %s", st.Apps[0].Mail.Error)
	}
	return *st.Apps[0].Mail
}

// provider is a real SMTP server (go-smtp) standing in for the mail
// provider: STARTTLS (self-signed certificate), AUTH PLAIN required.
type provider struct {
	addr, user, pass string
	tlsConf          *tls.Config

	mu       sync.Mutex
	srv      *smtp.Server
	got      map[string]received // by X-Order-Id
	arrived  chan struct{}
	refusing bool
}

type received struct {
	from string
	to   []string
	data []byte
	user string
	tls  bool
}

func startProvider(t *testing.T, host, user, pass string) *provider {
	t.Helper()
	p := &provider{user: user, pass: pass, got: map[string]received{}, arrived: make(chan struct{}, 100), tlsConf: selfSigned(t, host)}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	p.addr = l.Addr().String()
	p.serve(l)
	t.Cleanup(p.stop)
	return p
}

func (p *provider) serve(l net.Listener) {
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &provSession{p: p, conn: c}, nil
	}))
	s.Domain = "provider.test"
	s.TLSConfig = p.tlsConf
	s.AllowInsecureAuth = false // AUTH only after STARTTLS
	s.ReadTimeout, s.WriteTimeout = 30*time.Second, 30*time.Second
	p.mu.Lock()
	p.srv = s
	p.mu.Unlock()
	go s.Serve(l)
}

func (p *provider) stop() {
	p.mu.Lock()
	s := p.srv
	p.srv = nil
	p.mu.Unlock()
	if s != nil {
		s.Close()
	}
}

// restart listens again on the same address.
func (p *provider) restart(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.serve(l)
}

func (p *provider) refuse(on bool) {
	p.mu.Lock()
	p.refusing = on
	p.mu.Unlock()
}

func (p *provider) wait(t *testing.T, id string, d time.Duration) received {
	t.Helper()
	deadline := time.After(d)
	for {
		p.mu.Lock()
		m, ok := p.got[id]
		p.mu.Unlock()
		if ok {
			return m
		}
		select {
		case <-p.arrived:
		case <-deadline:
			t.Fatalf("message %s did not reach the provider within %s", id, d)
		}
	}
}

type provSession struct {
	p    *provider
	conn *smtp.Conn
	user string
	msg  received
}

func (s *provSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *provSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != s.p.user || pass != s.p.pass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "authentication failed"}
		}
		s.user = user
		return nil
	}), nil
}

func (s *provSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.msg = received{from: from, user: s.user}
	_, s.msg.tls = s.conn.TLSConnectionState()
	return nil
}

func (s *provSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.to = append(s.msg.to, to)
	return nil
}

func (s *provSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if s.p.refusing {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "over quota, try again later"}
	}
	s.msg.data = b
	m, err := mail.ReadMessage(strings.NewReader(string(b)))
	if err != nil {
		return errors.New("unparsable message")
	}
	s.p.got[m.Header.Get("X-Order-Id")] = s.msg
	select {
	case s.p.arrived <- struct{}{}:
	default:
	}
	return nil
}

func (s *provSession) Reset()        { s.msg = received{} }
func (s *provSession) Logout() error { return nil }

// selfSigned makes a throwaway certificate for host.
func selfSigned(t *testing.T, host string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "provider.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP(host)}, DNSNames: []string{"provider.test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}
