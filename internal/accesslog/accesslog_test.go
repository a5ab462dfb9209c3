package accesslog

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// journal is what `journalctl -u jecloud-haproxy.service -o cat` shows:
// HAProxy's own lines, and its access entries, captured from the real
// HAProxy 2.6 with the front door's log-format (the last line); the others
// are Caddy 2.6.2's, which wrote the log before and whose shape HAProxy's
// lines keep.
const journal = `{"level":"info","ts":1796390788.87,"logger":"tls.cache.maintenance","msg":"started background certificate maintenance"}
Proxy http stopped (cumulated conns: FE: 0, BE: 0).
{"level":"info","ts":1796390788.8795805,"logger":"http.log.access.shop_prod","msg":"handled request","request":{"remote_ip":"127.0.0.1","remote_port":"46374","proto":"HTTP/1.1","method":"GET","host":"localhost","uri":"/a/b?x=1","headers":{"User-Agent":["curl/7.88.1"],"Accept":["*/*"]}},"user_id":"","duration":0.000020539,"size":2,"status":201,"resp_headers":{"Server":["Caddy"],"Content-Type":["text/plain; charset=utf-8"]}}
{"level":"info","ts":1796390789.5,"logger":"http.log.access.shop_prod_eu","msg":"handled request","request":{"remote_ip":"10.0.0.9","method":"GET","host":"eu.example.com","uri":"/"},"duration":0.5,"size":10,"status":200}
{"level":"info","ts":1796390790.25,"logger":"http.log.access.shop_prod","msg":"handled request","request":{"remote_ip":"10.0.0.7","method":"POST","host":"www.example.com","uri":"/x\u001b[2J y"},"duration":1.234567,"size":2048,"status":502}
not json at all "logger":"http.log.access.shop_prod"
{"level":"info","ts":"2026-12-04T13:26:30.5Z","logger":"http.log.access.shop_prod","msg":"handled request","request":{"method":"HEAD","host":"a.example.com","uri":"/"},"duration":"3ms","size":0,"status":204}
{"level":"info","ts":1796434933.738,"logger":"http.log.access.shop_prod","msg":"handled request","request":{"remote_ip":"127.0.0.1","remote_port":"38910","proto":"HTTP/1.1","method":"GET","host":"shop.example.com","uri":"\/cart?id=3"},"duration_ms":12,"size":141,"status":200,"upstream":"site_shop_prod/p35533","termination":"----"}
`

// print is what jeagent logs --proxy does without -f.
func print(t *testing.T, journal, logger string, raw bool) string {
	t.Helper()
	ls, err := Collect(strings.NewReader(journal), logger)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range ls {
		l.Write(&b, raw)
	}
	return b.String()
}

// reversed is journal's lines newest first, as journalctl --grep -n prints them.
func reversed(s string) string {
	l := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	slices.Reverse(l)
	return strings.Join(l, "\n") + "\n"
}

func TestCollect(t *testing.T) {
	want := `2026-12-04T13:26:28.879Z 127.0.0.1 GET localhost /a/b?x=1 201 20.54µs 2 B
2026-12-04T13:26:30.250Z 10.0.0.7 POST www.example.com /x\x1b[2J%20y 502 1.23s 2.0 KiB
2026-12-04T13:26:30.500Z - HEAD a.example.com / 204 3ms 0 B
2026-12-05T01:42:13.738Z 127.0.0.1 GET shop.example.com /cart?id=3 200 12ms 141 B
`
	for _, j := range []string{journal, reversed(journal)} {
		if got := print(t, j, "http.log.access.shop_prod", false); got != want {
			t.Errorf("readable:\n%s\nwant:\n%s", got, want)
		}
	}
	raw := print(t, journal, "http.log.access.shop_prod", true)
	if n := strings.Count(raw, "\n"); n != 4 || !strings.Contains(raw, `"uri":"/x\u001b[2J y"`) {
		t.Errorf("raw: %d lines\n%s", n, raw)
	}
	if got := print(t, journal, "http.log.access.blog_prod", false); got != "" {
		t.Errorf("another app's log: %q", got)
	}
}

// TestCopy: a followed journal, its entries as they come, none already shown.
func TestCopy(t *testing.T) {
	var b strings.Builder
	if err := Copy(&b, strings.NewReader(journal), "http.log.access.shop_prod", false, time.Unix(1796390788, 900e6)); err != nil {
		t.Fatal(err)
	}
	if want := "2026-12-04T13:26:30.250Z 10.0.0.7 POST www.example.com /x\\x1b[2J%20y 502 1.23s 2.0 KiB\n2026-12-04T13:26:30.500Z - HEAD a.example.com / 204 3ms 0 B\n2026-12-05T01:42:13.738Z 127.0.0.1 GET shop.example.com /cart?id=3 200 12ms 141 B\n"; b.String() != want {
		t.Errorf("followed:\n%s\nwant:\n%s", b.String(), want)
	}
}
