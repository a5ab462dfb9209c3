package mail

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

// listener is a real SMTP server (go-smtp) standing in for an environment's
// Postfix listener.
type listener struct {
	mu   sync.Mutex
	from string
	to   []string
	data string
}

func (l *listener) NewSession(*smtp.Conn) (smtp.Session, error) { return l, nil }
func (l *listener) Mail(from string, _ *smtp.MailOptions) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.from = from
	return nil
}
func (l *listener) Rcpt(to string, _ *smtp.RcptOptions) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.to = append(l.to, to)
	return nil
}
func (l *listener) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.data = string(b)
	return err
}
func (l *listener) Reset()        {}
func (l *listener) Logout() error { return nil }

func TestReroute(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := &listener{}
	srv := smtp.NewServer(got)
	srv.AllowInsecureAuth = true
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port

	e := env{App: "shop", Env: "prod", Port: port, Relay: Relay{Host: "new.example.com", Port: 587, TLS: TLSEncrypt}}
	queue := `{"queue_name": "deferred", "queue_id": "OLD1", "arrival_time": 1, "sender": "shop@x.example", "recipients": [{"address": "a@y.example"}, {"address": "b@y.example"}]}
{"queue_name": "deferred", "queue_id": "NEW2", "arrival_time": 1, "sender": "shop@x.example", "recipients": [{"address": "c@y.example"}]}
{"queue_name": "deferred", "queue_id": "OTH3", "arrival_time": 1, "sender": "o@x.example", "recipients": [{"address": "d@y.example"}]}
{"queue_name": "active", "queue_id": "ACT4", "arrival_time": 1, "sender": "shop@x.example", "recipients": [{"address": "e@y.example"}]}
`
	postcat := `*** ENVELOPE RECORDS deferred/OLD1 ***
content_filter: jecloud-shop_prod:[old.example.com]:587
*** ENVELOPE RECORDS deferred/NEW2 ***
content_filter: jecloud-shop_prod:[new.example.com]:587
*** ENVELOPE RECORDS deferred/OTH3 ***
content_filter: jecloud-shop_staging:[old.example.com]:587
*** ENVELOPE RECORDS active/ACT4 ***
content_filter: jecloud-shop_prod:[old.example.com]:587
`
	message := "Received: from localhost\n\tby vm;\nFrom: shop@x.example\nSubject: hi\nMessage-ID: <1@x.example>\n\nline\n.dot line\n"
	var calls []string
	fail := ""
	r := &StatusReader{Run: func(_ context.Context, name string, args ...string) ([]byte, error) {
		call := name + " " + strings.Join(args, " ")
		calls = append(calls, call)
		switch {
		case call == fail:
			return nil, fmt.Errorf("%s failed", call)
		case name == "postqueue":
			return []byte(queue), nil
		case call == "postcat -bh -q OLD1", call == "postcat -bh -q LEG5":
			return []byte(message), nil
		case name == "postcat":
			return []byte(postcat), nil
		case name == "postsuper":
			return nil, nil
		}
		return nil, fmt.Errorf("unexpected %s", call)
	}}
	var log strings.Builder
	if left, err := (&Hook{}).reroute(context.Background(), r, e, false, &log); err != nil || left != 0 {
		t.Fatal(left, err)
	}
	wantCalls := "postqueue -j\npostcat -e -q OLD1 NEW2 OTH3 ACT4\npostsuper -h OLD1\npostcat -bh -q OLD1\npostsuper -d OLD1 hold"
	if strings.Join(calls, "\n") != wantCalls {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), wantCalls)
	}
	got.mu.Lock()
	if got.from != "shop@x.example" || strings.Join(got.to, ",") != "a@y.example,b@y.example" {
		t.Errorf("envelope from %q to %v", got.from, got.to)
	}
	if want := strings.ReplaceAll(message, "\n", "\r\n"); got.data != want {
		t.Errorf("re-sent message %q, want %q", got.data, want)
	}
	got.mu.Unlock()
	if !strings.Contains(log.String(), "1 queued message(s) re-sent") {
		t.Errorf("log: %s", log.String())
	}

	// Mail queued for the transport of the name before issue #17, which
	// shop/prod owns (legacy): the deferred message moves to the new
	// transport even to the same provider; one being delivered (active) is
	// left, and counted, so that the old transport stays for it.
	queue += `{"queue_name": "deferred", "queue_id": "LEG5", "arrival_time": 1, "sender": "shop@x.example", "recipients": [{"address": "f@y.example"}]}
{"queue_name": "active", "queue_id": "LEG6", "arrival_time": 1, "sender": "shop@x.example", "recipients": [{"address": "g@y.example"}]}
`
	postcat += `*** ENVELOPE RECORDS deferred/LEG5 ***
content_filter: jecloud-shop-prod:[new.example.com]:587
*** ENVELOPE RECORDS active/LEG6 ***
content_filter: jecloud-shop-prod:[new.example.com]:587
`
	calls = nil
	if left, err := (&Hook{}).reroute(context.Background(), r, e, false, io.Discard); err != nil || left != 0 || strings.Contains(strings.Join(calls, "\n"), "LEG5 hold") {
		t.Errorf("not owning the old transport: %d left, %v, calls %q", left, err, calls)
	}
	calls = nil
	if left, err := (&Hook{}).reroute(context.Background(), r, e, true, io.Discard); err != nil || left != 1 || !strings.Contains(strings.Join(calls, "\n"), "postsuper -d LEG5 hold") {
		t.Errorf("owning the old transport: %d left, %v, calls %q", left, err, calls)
	}

	// The listener is down: the message is released, and the deploy fails
	// saying it stays queued.
	srv.Close()
	calls = nil
	_, err = (&Hook{}).reroute(context.Background(), r, e, false, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "it stays queued for jecloud-shop_prod:[old.example.com]:587") {
		t.Errorf("error %v", err)
	}
	if !strings.Contains(strings.Join(calls, "\n"), "postsuper -H OLD1") || strings.Contains(strings.Join(calls, "\n"), "postsuper -d") {
		t.Errorf("calls:\n%s", strings.Join(calls, "\n"))
	}
}
