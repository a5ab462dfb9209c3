package mail

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/hook"
)

// TestRelayVerifiesCertificate: the attack is a man in the middle between
// the server and the mail provider (a hijacked route, a poisoned DNS
// answer) who shows any certificate and reads the provider's password
// and every message. A relay set up from a plain MAIL_RELAY_URL or the
// Sendgrid shorthand checks the provider's certificate against the
// system's CA bundle and its host name (smtp_tls_security_level=secure);
// only an explicit ?tls=encrypt turns that off. (Before issue #17 the
// default was encrypt: any certificate was accepted.)
func TestRelayVerifiesCertificate(t *testing.T) {
	for _, vars := range []map[string]string{
		{"MAIL_RELAY_URL": "smtp://u:pw@smtp.example.com"},
		{"MAIL_RELAY_URL": "smtps://u:pw@smtp.example.com"},
		{"SENDGRID_API_KEY": "SG.k"},
	} {
		r, err := ParseRelay(vars, "config.env")
		if err != nil {
			t.Fatal(err)
		}
		m := env{App: "shop", Env: "prod", Port: 2525, Relay: r, Dir: "CONF"}.Master()
		for _, w := range []string{"  -o smtp_tls_security_level=secure\n", "  -o smtp_tls_CAfile=" + SystemCAFile + "\n",
			"  -o smtp_tls_secure_cert_match=nexthop,dot-nexthop\n"} {
			if !strings.Contains(m, w) {
				t.Errorf("%v: master.cf part lacks %q:\n%s", vars, w, m)
			}
		}
	}
	r, err := ParseRelay(map[string]string{"MAIL_RELAY_URL": "smtp://u:pw@smtp.example.com?tls=encrypt"}, "config.env")
	if err != nil {
		t.Fatal(err)
	}
	if m := (env{App: "shop", Env: "prod", Port: 2525, Relay: r, Dir: "CONF"}).Master(); !strings.Contains(m, "smtp_tls_security_level=encrypt\n") || strings.Contains(m, "CAfile") {
		t.Errorf("tls=encrypt (the opt-out):\n%s", m)
	}
	t.Logf("summary: 3 default relay set-ups verify the provider's certificate (secure, system CA bundle, host name); tls=encrypt is the only opt-out")
}

func TestParseRelay(t *testing.T) {
	for _, tc := range []struct {
		name string
		vars map[string]string
		want Relay
		err  string // part of the error, "" for none
	}{
		{"sendgrid shorthand", map[string]string{"SENDGRID_API_KEY": "SG.abc"},
			Relay{Host: "smtp.sendgrid.net", Port: 587, User: "apikey", Password: "SG.abc", TLS: "secure"}, ""},
		{"smtp default port", map[string]string{"MAIL_RELAY_URL": "smtp://u:pw-1@mail.example.com"},
			Relay{Host: "mail.example.com", Port: 587, User: "u", Password: "pw-1", TLS: "secure"}, ""},
		{"opt-out of the certificate check", map[string]string{"MAIL_RELAY_URL": "smtp://u:pw-1@mail.example.com?tls=encrypt"},
			Relay{Host: "mail.example.com", Port: 587, User: "u", Password: "pw-1", TLS: "encrypt"}, ""},
		{"private CA", map[string]string{"MAIL_RELAY_URL": "smtp://u:pw-1@mail.corp.example?ca=/etc/ssl/corp-ca.pem"},
			Relay{Host: "mail.corp.example", Port: 587, User: "u", Password: "pw-1", TLS: "secure", CAFile: "/etc/ssl/corp-ca.pem"}, ""},
		{"CA not absolute", map[string]string{"MAIL_RELAY_URL": "smtp://u:secret@h?ca=corp.pem"}, Relay{}, `ca="corp.pem"`},
		{"CA without a check", map[string]string{"MAIL_RELAY_URL": "smtp://u:secret@h?ca=/etc/ca.pem&tls=encrypt"}, Relay{}, "goes with tls=secure"},
		{"escaped password", map[string]string{"MAIL_RELAY_URL": "smtp://u%40x:p%3Aq%20r@10.0.0.5:2525?tls=none"},
			Relay{Host: "10.0.0.5", Port: 2525, User: "u@x", Password: "p:q r", TLS: "none"}, ""},
		{"smtps", map[string]string{"MAIL_RELAY_URL": "smtps://u:pw-2@mail.example.com?tls=secure"},
			Relay{Host: "mail.example.com", Port: 465, User: "u", Password: "pw-2", TLS: "secure", Wrapper: true}, ""},
		{"no auth", map[string]string{"MAIL_RELAY_URL": "smtp://relay.internal:25?tls=none"},
			Relay{Host: "relay.internal", Port: 25, TLS: "none"}, ""},
		{"nothing set", map[string]string{"OTHER": "x"}, Relay{}, "no mail provider: set MAIL_RELAY_URL="},
		{"both set", map[string]string{"MAIL_RELAY_URL": "smtp://a", "SENDGRID_API_KEY": "k"}, Relay{}, "both MAIL_RELAY_URL and SENDGRID_API_KEY"},
		{"bad scheme", map[string]string{"MAIL_RELAY_URL": "http://u:secret@h"}, Relay{}, `scheme "http"`},
		{"bad port", map[string]string{"MAIL_RELAY_URL": "smtp://u:secret@h:99999"}, Relay{}, `port "99999"`},
		{"user without password", map[string]string{"MAIL_RELAY_URL": "smtp://u@h"}, Relay{}, "both a user and a password"},
		{"bad tls", map[string]string{"MAIL_RELAY_URL": "smtp://u:secret@h?tls=maybe"}, Relay{}, `tls="maybe"`},
		{"smtps without tls", map[string]string{"MAIL_RELAY_URL": "smtps://u:secret@h?tls=none"}, Relay{}, "smtps is TLS"},
		{"unknown parameter", map[string]string{"MAIL_RELAY_URL": "smtp://u:secret@h?auth=x"}, Relay{}, `unknown parameter "auth"`},
		{"no host", map[string]string{"MAIL_RELAY_URL": "smtp://u:secret@:25"}, Relay{}, "no host name"},
		{"not a URL", map[string]string{"MAIL_RELAY_URL": "smtp://u:sec ret@h%zz"}, Relay{}, "is not a URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRelay(tc.vars, "/var/cloud/shop/prod/config.env")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				if !strings.Contains(err.Error(), "/var/cloud/shop/prod/config.env") {
					t.Errorf("the error does not name the file: %v", err)
				}
				if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "sec ret") {
					t.Errorf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if strings.Contains(got.String(), got.Password) && got.Password != "" {
				t.Errorf("String shows the password: %s", got)
			}
		})
	}
}

func TestMasterAndMap(t *testing.T) {
	for _, tc := range []struct {
		name     string
		relay    Relay
		want     []string
		unwanted []string
		saslMap  string
	}{
		{"sendgrid", Relay{Host: "smtp.sendgrid.net", Port: 587, User: "apikey", Password: "SG.k", TLS: TLSEncrypt, CAFile: ""},
			[]string{
				"127.0.0.1:2525 inet n - n - - smtpd\n",
				"  -o content_filter=jecloud-shop_prod:[smtp.sendgrid.net]:587\n",
				"  -o syslog_name=postfix/jecloud-shop_prod\n",
				"  -o smtpd_relay_restrictions=permit_mynetworks,reject\n",
				"  -o receive_override_options=no_address_mappings\n",
				"  -o smtpd_reject_unlisted_recipient=no\n",
				"jecloud-shop_prod unix - - n - - smtp\n",
				"  -o smtp_sasl_password_maps=hash:CONF/jecloud-shop_prod.sasl\n",
				"  -o smtp_tls_security_level=encrypt\n",
				"  -o smtp_tls_wrappermode=no\n",
			}, []string{"SG.k", "CAfile"}, "[smtp.sendgrid.net]:587 apikey:SG.k\n"},
		{"smtps secure", Relay{Host: "mail.example.com", Port: 465, User: "u", Password: "p w", TLS: TLSSecure, Wrapper: true},
			[]string{"  -o smtp_tls_wrappermode=yes\n", "  -o smtp_tls_security_level=secure\n", "  -o smtp_tls_CAfile=/etc/ssl/certs/ca-certificates.crt\n"},
			[]string{"p w"}, "[mail.example.com]:465 u:p w\n"},
		{"private CA", Relay{Host: "mail.corp.example", Port: 587, User: "u", Password: "p", TLS: TLSSecure, CAFile: "/etc/ssl/corp-ca.pem"},
			[]string{"  -o smtp_tls_security_level=secure\n", "  -o smtp_tls_CAfile=/etc/ssl/corp-ca.pem\n", "  -o smtp_tls_CApath=\n"},
			[]string{"ca-certificates.crt"}, "[mail.corp.example]:587 u:p\n"},
		{"plain relay without auth", Relay{Host: "10.0.0.5", Port: 25, TLS: TLSNone},
			[]string{"  -o smtp_sasl_auth_enable=no\n", "  -o smtp_tls_security_level=none\n"},
			[]string{"smtp_sasl_password_maps"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := env{App: "shop", Env: "prod", Port: 2525, Relay: tc.relay, Dir: "CONF"}
			m := e.Master()
			for _, w := range tc.want {
				if !strings.Contains(m, w) {
					t.Errorf("master.cf part lacks %q:\n%s", w, m)
				}
			}
			for _, u := range tc.unwanted {
				if strings.Contains(m, u) {
					t.Errorf("master.cf part has %q:\n%s", u, m)
				}
			}
			// Every service line is followed only by -o lines or comments.
			for _, l := range strings.Split(strings.TrimSpace(m), "\n") {
				if !strings.HasPrefix(l, "  -o ") && !strings.HasPrefix(l, "#") && len(strings.Fields(l)) != 8 {
					t.Errorf("not a master.cf line: %q", l)
				}
			}
			if got := e.SASLMap(); got != tc.saslMap {
				t.Errorf("SASL map %q, want %q", got, tc.saslMap)
			}
		})
	}
}

func TestMergeMaster(t *testing.T) {
	debian := "# Postfix master process configuration file.\nsmtp      inet  n       -       y       -       -       smtpd\n"
	parts := map[string]string{"jecloud-b-prod": "B\n", "jecloud-a-prod": "A\n"}
	one := MergeMaster(debian, "/etc/postfix/jecloud", parts)
	want := debian + blockBegin + "/etc/postfix/jecloud (edits are lost)\nA\nB\n" + blockEnd + "\n"
	if one != want {
		t.Fatalf("merged:\n%s\nwant:\n%s", one, want)
	}
	if again := MergeMaster(one, "/etc/postfix/jecloud", parts); again != one {
		t.Errorf("a second merge changed it:\n%s", again)
	}
	// Lines people add after the block are kept; the block is replaced.
	edited := one + "# mine\n"
	got := MergeMaster(edited, "/etc/postfix/jecloud", map[string]string{"jecloud-a-prod": "A2\n"})
	if !strings.Contains(got, "A2\n") || strings.Contains(got, "B\n") || !strings.HasSuffix(got, blockEnd+"\n") || !strings.Contains(got, "# mine\n") {
		t.Errorf("merged:\n%s", got)
	}
	if got := MergeMaster(one, "/etc/postfix/jecloud", nil); got != debian {
		t.Errorf("without parts:\n%s\nwant Debian's file back:\n%s", got, debian)
	}
	if got := MergeMaster("smtp inet n - y - - smtpd", "/d", parts); !strings.HasPrefix(got, "smtp inet n - y - - smtpd\n"+blockBegin) {
		t.Errorf("a master.cf without a final newline:\n%s", got)
	}
}

func TestWriteIfChangedAndParts(t *testing.T) {
	dir := t.TempDir()
	e := env{App: "shop", Env: "prod", Port: 2600, Relay: Relay{Host: "h", Port: 587, User: "u", Password: "p", TLS: TLSEncrypt}, Dir: dir}
	if os.Getuid() != 0 {
		t.Skip("writes root-owned files")
	}
	changed, err := writeIfChanged(e.saslPath(), e.SASLMap(), 0o600)
	if err != nil || !changed {
		t.Fatalf("first write: %v %v", changed, err)
	}
	if changed, _ := writeIfChanged(e.saslPath(), e.SASLMap(), 0o600); changed {
		t.Error("an unchanged map was rewritten")
	}
	os.Chmod(e.saslPath(), 0o644)
	if changed, _ := writeIfChanged(e.saslPath(), e.SASLMap(), 0o600); !changed {
		t.Error("a map with the wrong mode was left")
	}
	if fi, _ := os.Stat(e.saslPath()); fi.Mode().Perm() != 0o600 {
		t.Errorf("map mode %v", fi.Mode().Perm())
	}
	if _, err := writeIfChanged(e.masterPath(), e.Master(), 0o644); err != nil {
		t.Fatal(err)
	}
	parts, err := readParts(dir)
	if err != nil || len(parts) != 1 || parts["jecloud-shop_prod"] != e.Master() {
		t.Errorf("parts %v, %v", parts, err)
	}
}

func TestStatus(t *testing.T) {
	dir := t.TempDir()
	e := env{App: "shop", Env: "prod", Port: 2525, Dir: dir}
	b, _ := json.Marshal(info{Listen: "127.0.0.1:2525", Relay: "smtp://apikey@smtp.sendgrid.net:587 (tls encrypt)", Name: e.Name()})
	os.WriteFile(e.infoPath(), b, 0o644)
	arrival := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	sentAt := arrival.Add(-time.Hour)
	failAt := arrival.Add(time.Minute)
	queue := fmt.Sprintf(`{"queue_name": "deferred", "queue_id": "AAA1", "arrival_time": %d, "sender": "a@b", "recipients": [{"address": "c@d", "delay_reason": "connect to h[1.2.3.4]:587: Connection refused"}]}
{"queue_name": "active", "queue_id": "BBB2", "arrival_time": %d, "sender": "a@b", "recipients": [{"address": "c@d"}]}
{"queue_name": "deferred", "queue_id": "CCC3", "arrival_time": %d, "sender": "x@y", "recipients": [{"address": "c@d", "delay_reason": "other env"}]}
`, arrival.Unix(), arrival.Add(time.Minute).Unix(), arrival.Unix())
	postcat := `*** ENVELOPE RECORDS deferred/A/AAA1 ***
content_filter: jecloud-shop_prod:[smtp.sendgrid.net]:587
sender: a@b
*** MESSAGE CONTENTS deferred/A/AAA1 ***
*** ENVELOPE RECORDS active/BBB2 ***
content_filter: jecloud-shop_prod:[smtp.sendgrid.net]:587
*** ENVELOPE RECORDS deferred/C/CCC3 ***
content_filter: jecloud-shop_staging:[smtp.sendgrid.net]:587
`
	journal := fmt.Sprintf(`{"MESSAGE": "AAA0: to=<c@d>, relay=smtp.sendgrid.net[1.2.3.4]:587, delay=1, dsn=2.0.0, status=sent (250 Ok: queued as x)", "__REALTIME_TIMESTAMP": "%d"}
{"MESSAGE": "warning: something else", "__REALTIME_TIMESTAMP": "%d"}
{"MESSAGE": "AAA1: to=<c@d>, relay=none, delay=60, dsn=4.4.1, status=deferred (connect to h[1.2.3.4]:587: Connection refused)", "__REALTIME_TIMESTAMP": "%d"}
`, sentAt.UnixMicro(), sentAt.UnixMicro(), failAt.UnixMicro())
	var calls []string
	r := &StatusReader{ConfDir: dir, Run: func(_ context.Context, name string, args ...string) ([]byte, error) {
		calls = append(calls, name+" "+strings.Join(args, " "))
		switch name {
		case "postqueue":
			return []byte(queue), nil
		case "postcat":
			return []byte(postcat), nil
		case "journalctl":
			return []byte(journal), nil
		}
		return nil, fmt.Errorf("unexpected %s", name)
	}}
	s := r.Status(context.Background(), "shop", "prod")
	if s == nil || s.Error != "" {
		t.Fatalf("status %+v", s)
	}
	if s.Listen != "127.0.0.1:2525" || s.Queued != 2 || s.Deferred != 1 || !s.Oldest.Equal(arrival) {
		t.Errorf("status %+v", s)
	}
	if s.LastSent == nil || !s.LastSent.Equal(sentAt) {
		t.Errorf("last sent %v, want %v", s.LastSent, sentAt)
	}
	if f := s.LastFailure; f == nil || f.Status != "deferred" || f.Reason != "connect to h[1.2.3.4]:587: Connection refused" || !f.Date.Equal(failAt) {
		t.Errorf("last failure %+v", f)
	}
	if s2 := r.Status(context.Background(), "shop", "staging"); s2 != nil {
		t.Errorf("an environment without mail has a status: %+v", s2)
	}
	if n := strings.Count(strings.Join(calls, "\n"), "postqueue"); n != 1 {
		t.Errorf("postqueue ran %d times: %v", n, calls)
	}
	if !strings.Contains(strings.Join(calls, "\n"), "journalctl --no-pager -o json -n 300 -t postfix/jecloud-shop_prod/smtp") {
		t.Errorf("calls %v", calls)
	}

	// A later delivery clears the failure once nothing is deferred.
	journal += fmt.Sprintf(`{"MESSAGE": "AAA1: to=<c@d>, status=sent (250 ok)", "__REALTIME_TIMESTAMP": "%d"}`+"\n", failAt.Add(time.Minute).UnixMicro())
	queue = ""
	r.queue = nil
	if s := r.Status(context.Background(), "shop", "prod"); s.LastFailure != nil || s.Queued != 0 || !s.LastSent.Equal(failAt.Add(time.Minute)) {
		t.Errorf("after delivery: %+v", s)
	}
}

func TestRunPhases(t *testing.T) {
	root := t.TempDir()
	rel := filepath.Join(root, "shop", "prod", "source", "versions", "v1")
	os.MkdirAll(rel, 0o755)
	os.WriteFile(filepath.Join(rel, "jecloud.toml"), []byte("[services]\nmail = \"\"\n"), 0o644)
	h := &Hook{PostfixDir: t.TempDir(), ConfDir: t.TempDir(), Active: func() bool { return false }}
	var log strings.Builder
	for _, phase := range []string{"prepare", "cleanup", "install", "deployed"} {
		req := hook.Request{Phase: phase, App: "shop", Env: "prod", Root: root, ReleaseDir: rel}
		if _, err := h.Run(context.Background(), req, &log); err != nil {
			t.Errorf("%s: %v", phase, err)
		}
	}
	if n := strings.Count(log.String(), "systemd is not running here: mail is not set up"); n != 2 {
		t.Errorf("log:\n%s", log.String())
	}
	// A release that does not declare mail, in an environment that never
	// had it: nothing to do, no Postfix needed.
	os.WriteFile(filepath.Join(rel, "jecloud.toml"), []byte("[services]\n"), 0o644)
	h.Active = func() bool { return true }
	if _, err := h.Run(context.Background(), hook.Request{Phase: "install", App: "shop", Env: "prod", Root: root, ReleaseDir: rel}, io.Discard); err != nil {
		t.Error(err)
	}
}
