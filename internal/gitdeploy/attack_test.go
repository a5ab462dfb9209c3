package gitdeploy

// Attacks on the webhook by someone who can reach its port (issue #17,
// "nothing unauthenticated costs the server"), and on the build by a
// signed delivery replayed later. Figures in docs/reliability.md.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/state"
)

const testKnownHosts = "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"

// setUpShop sets shop/prod up for git deploys of repo's main branch.
func setUpShop(t *testing.T, repo string) (state.Layout, state.AppEnv, string) {
	t.Helper()
	l := state.Layout{Root: t.TempDir()}
	ae := state.AppEnv{App: "shop", Env: "prod"}
	secret := strings.Repeat("k", 32)
	if _, err := Setup(l, ae, SetupRequest{Repository: repo, Branch: "main", Secret: secret, KnownHosts: testKnownHosts}, "c"); err != nil {
		t.Fatal(err)
	}
	return l, ae, secret
}

// TestBuildOnlyTheTip: a signed delivery of an old commit, replayed later
// under a fresh delivery ID, must not deploy that commit: the build fetches
// the branch and builds its tip on the git server, whatever the delivery
// named (also when the old commit is already in the mirror).
func TestBuildOnlyTheTip(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	origin := filepath.Join(dir, "origin.git")
	work := filepath.Join(dir, "work")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
			"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	commit := func(content string) string {
		if err := os.WriteFile(filepath.Join(work, "index.js"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		run("-C", work, "add", "-A")
		run("-C", work, "commit", "-q", "-m", content)
		run("-C", work, "push", "-q", origin, "HEAD:main")
		return run("-C", work, "rev-parse", "HEAD")
	}
	run("init", "-q", "--bare", "-b", "main", origin)
	run("init", "-q", "-b", "main", work)
	c1 := commit("v1")

	// ssh to the "git server": runs the command git asks for, here.
	fakeSSH := filepath.Join(dir, "ssh")
	if err := os.WriteFile(fakeSSH, []byte("#!/bin/sh\nfor last; do :; done\nexec sh -c \"$last\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	l, ae, _ := setUpShop(t, "git@github.com:"+origin)
	var a state.App
	if err := state.Read(l.AppJSON(ae), &a); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	b := &Builder{Layout: l, SSH: fakeSSH, Log: &log}
	build := func(c string) (string, string) {
		t.Helper()
		built, id, err := b.Build(t.Context(), ae, *a.Git, c)
		if err != nil {
			t.Fatalf("build of %s: %v\n%s", c[:12], err, log.String())
		}
		return built, id
	}
	built1, v1 := build(c1)
	if built1 != c1 {
		t.Fatalf("the tip %s built as %s", c1[:12], built1)
	}
	c2 := commit("v2")
	built2, v2 := build(c2)
	if built2 != c2 || v2 == v1 {
		t.Fatalf("the new tip %s: built %s, version %s (v1 %s)", c2[:12], built2, v2, v1)
	}
	// The replay: c1's delivery again, c1 in the mirror.
	log.Reset()
	built, id := build(c1)
	if built != c2 || id != v2 {
		t.Errorf("a replayed delivery of %s built %s (version %s); want the tip %s (version %s)", c1[:12], built[:12], id, c2[:12], v2)
	}
	if !strings.Contains(log.String(), "is not the tip") {
		t.Errorf("the build log does not say why it built the tip:\n%s", log.String())
	}
	t.Logf("summary: a replayed delivery of an old commit built the branch's tip %s, version %s", c2[:12], id)
}

// TestWebhookSameAnswer: an app environment not set up here, one with no
// secret, and a bad signature get the same status code and body, also
// for a payload over the cap: a prober learns nothing of which exist.
// The log says which it was.
func TestWebhookSameAnswer(t *testing.T) {
	l, _, secret := setUpShop(t, "git@github.com:acme/shop.git")
	ae2 := state.AppEnv{App: "shop", Env: "nosecret"}
	if _, err := Setup(l, ae2, SetupRequest{Repository: "git@github.com:acme/shop.git", Branch: "main", Secret: secret, KnownHosts: testKnownHosts}, "c"); err != nil {
		t.Fatal(err)
	}
	os.Remove(FilesOf(l, ae2).Secret())
	var log bytes.Buffer
	h := &Webhook{Layout: l, Log: &log, Start: func(context.Context) (string, error) { return "started", nil }}
	body := `{"ref":"refs/heads/main","after":"` + strings.Repeat("ab", 20) + `","repository":"git@github.com:acme/shop.git"}`
	send := func(path, sig, body string) (int, string) {
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("X-Hub-Signature-256", sig)
		req.Header.Set("X-GitHub-Delivery", "d1")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	for _, size := range []int{len(body), MaxPayload + 1} {
		b := body
		if size > len(b) {
			b = strings.Repeat(" ", size-len(b)) + b
		}
		wrong := Sign([]byte("not the secret"), []byte(b))
		log.Reset()
		badSig, badSigBody := send("/hooks/shop/prod", wrong, b)
		for _, path := range []string{"/hooks/shop/staging", "/hooks/nosuchapp/prod", "/hooks/shop/nosecret"} {
			code, ans := send(path, wrong, b)
			if code != badSig || ans != badSigBody {
				t.Errorf("%d bytes: %s answered\n  %d %s\nbut a bad signature\n  %d %s", size, path, code, ans, badSig, badSigBody)
			}
			code, ans = send(path, Sign([]byte(secret), []byte(b)), b)
			if code != badSig || ans != badSigBody {
				t.Errorf("%d bytes: %s signed with another environment's secret answered\n  %d %s\nbut a bad signature\n  %d %s", size, path, code, ans, badSig, badSigBody)
			}
		}
		if size == len(body) {
			for _, want := range []string{"bad signature", "shop/staging is not set up", "nosuchapp/prod is not set up", "webhook.secret"} {
				if !strings.Contains(log.String(), want) {
					t.Errorf("the log does not say %q:\n%s", want, log.String())
				}
			}
		}
		t.Logf("summary: %d-byte payload: bad signature, 2 environments not set up and 1 without a secret answered alike: %d %s", size, badSig, strings.TrimSpace(badSigBody))
	}
}

// TestWebhookLogEscaped: whatever comes in the request (path, delivery ID,
// event, ref, repository, after) is logged escaped: no forged log line, no
// terminal escape sequence reaches the journal raw.
func TestWebhookLogEscaped(t *testing.T) {
	l, _, secret := setUpShop(t, "git@github.com:acme/shop.git")
	var log bytes.Buffer
	h := &Webhook{Layout: l, Log: &log, Start: func(context.Context) (string, error) { return "started", nil }}
	const evil = "x\nwebhook shop/prod: delivery d9 from 10.0.0.1:1: accepted commit ffffffffffff\x1b[2J\x1b]0;owned\x07\r"
	jsonEvil := strings.NewReplacer("\n", `\n`, "\x1b", `\u001b`, "\x07", `\u0007`, "\r", `\r`).Replace(evil)
	commit := strings.Repeat("ab", 20)
	push := func(ref, after, repo string) string {
		return `{"ref":"` + ref + `","after":"` + after + `","repository":"` + repo + `"}`
	}
	good := push("refs/heads/main", commit, "git@github.com:acme/shop.git")
	cases := []struct {
		name, method, path, delivery, event, body string
	}{
		{name: "path", path: "/hooks/" + strings.NewReplacer("\n", "%0a", "\x1b", "%1b", "\x07", "%07", "\r", "%0d", " ", "%20").Replace(evil)},
		{name: "path of 3 parts", path: "/hooks/a/b/%0aforged%1b[31m"},
		{name: "delivery ID", delivery: evil},
		{name: "event", event: evil},
		{name: "ref", body: push(jsonEvil, commit, "git@github.com:acme/shop.git")},
		{name: "repository", body: push("refs/heads/main", commit, jsonEvil)},
		{name: "after", body: push("refs/heads/main", jsonEvil, "git@github.com:acme/shop.git")},
	}
	for i, tc := range cases {
		log.Reset()
		body := tc.body
		if body == "" {
			body = good
		}
		path := tc.path
		if path == "" {
			path = "/hooks/shop/prod"
		}
		req := httptest.NewRequest("POST", "/", strings.NewReader(body))
		req.URL.RawPath, req.URL.Path = "", ""
		u, err := req.URL.Parse(path)
		if err != nil {
			t.Fatal(err)
		}
		req.URL = u
		req.Header.Set("X-Hub-Signature-256", Sign([]byte(secret), []byte(body)))
		delivery := tc.delivery
		if delivery == "" {
			delivery = fmt.Sprint("e", i)
		}
		req.Header["X-Github-Delivery"] = []string{delivery}
		if tc.event != "" {
			req.Header["X-Github-Event"] = []string{tc.event}
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
		got := log.String()
		if strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") || strings.ContainsAny(got[:len(got)-1], "\n\r\x1b\x07") {
			t.Errorf("%s: the log line is not escaped: %q", tc.name, got)
		}
	}
	t.Logf("summary: %d fields with a newline, CR, BEL and escape sequences: logged escaped, one line each", len(cases))
}

// TestWebhookBounds: before the signature is verified, the webhook reads
// at most MaxPayload bytes (and none of a payload whose Content-Length is
// over it), and serves at most MaxUnverified deliveries at once: the
// others get 503 at once.
func TestWebhookBounds(t *testing.T) {
	l, _, _ := setUpShop(t, "git@github.com:acme/shop.git")
	h := &Webhook{Layout: l, Log: io.Discard, Start: func(context.Context) (string, error) { return "started", nil }}

	if held := MaxUnverified * MaxPayload; held > 32<<20 {
		t.Errorf("unverified deliveries may hold %d MiB at once (%d x %d bytes), over 32 MiB", held>>20, MaxUnverified, MaxPayload)
	}
	t.Run("payload over the cap", func(t *testing.T) {
		r := &countingReader{n: 100 << 20}
		req := httptest.NewRequest("POST", "/hooks/shop/prod", r)
		req.Header.Set("X-Hub-Signature-256", "sha256=00")
		req.Header.Set("X-GitHub-Delivery", "b1")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge || r.read > MaxPayload+64<<10 {
			t.Errorf("a 100 MiB payload: %d, %d bytes read (cap %d)", rec.Code, r.read, MaxPayload)
		}
		t.Logf("summary: a 100 MiB payload: %d after %d bytes read (cap %d)", rec.Code, r.read, MaxPayload)
	})
	t.Run("Content-Length over the cap", func(t *testing.T) {
		r := &countingReader{n: 100 << 20}
		req := httptest.NewRequest("POST", "/hooks/shop/prod", r)
		req.ContentLength = 100 << 20
		req.Header.Set("X-Hub-Signature-256", "sha256=00")
		req.Header.Set("X-GitHub-Delivery", "b2")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge || r.read != 0 {
			t.Errorf("Content-Length of 100 MiB: %d, %d bytes read", rec.Code, r.read)
		}
	})
	t.Run("at once", func(t *testing.T) {
		// MaxUnverified senders that never finish their payload hold
		// every slot; the next delivery is answered 503 at once.
		block := make(chan struct{})
		var wg sync.WaitGroup
		for i := range MaxUnverified {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := httptest.NewRequest("POST", "/hooks/shop/prod", &blockingReader{block})
				req.Header.Set("X-GitHub-Delivery", fmt.Sprint("slow", i))
				h.ServeHTTP(httptest.NewRecorder(), req)
			}()
		}
		defer func() { close(block); wg.Wait() }()
		deadline := time.Now().Add(5 * time.Second)
		for h.unverified() < MaxUnverified && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		t0 := time.Now()
		req := httptest.NewRequest("POST", "/hooks/shop/prod", strings.NewReader("{}"))
		req.Header.Set("X-GitHub-Delivery", "next")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable || time.Since(t0) > time.Second {
			t.Errorf("delivery %d while %d are unverified: %d after %v %s", MaxUnverified+1, MaxUnverified, rec.Code, time.Since(t0), rec.Body)
		}
		t.Logf("summary: delivery %d while %d wait for their payload: %d in %v", MaxUnverified+1, MaxUnverified, rec.Code, time.Since(t0).Round(time.Microsecond))
	})
	t.Run("headers", func(t *testing.T) {
		srv := h.Server()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		defer srv.Close()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		big := strings.Repeat("a", 1<<20)
		go fmt.Fprintf(c, "POST /hooks/shop/prod HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", big)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufioLine(c)
		if !strings.Contains(line, " 431 ") {
			t.Errorf("1 MiB of headers: %q, want 431", line)
		}
		if srv.MaxHeaderBytes > 64<<10 || srv.ReadHeaderTimeout == 0 || srv.ReadTimeout == 0 || srv.ReadTimeout > 30*time.Second {
			t.Errorf("server limits: headers %d bytes, header timeout %v, read timeout %v", srv.MaxHeaderBytes, srv.ReadHeaderTimeout, srv.ReadTimeout)
		}
		t.Logf("summary: 1 MiB of headers: %s; header cap %d bytes, read timeouts %v/%v", strings.TrimSpace(line), srv.MaxHeaderBytes, srv.ReadHeaderTimeout, srv.ReadTimeout)
	})
}

// countingReader gives n bytes of spaces, counting what was read.
type countingReader struct{ n, read int }

func (r *countingReader) Read(p []byte) (int, error) {
	if r.read >= r.n {
		return 0, io.EOF
	}
	k := min(len(p), r.n-r.read)
	for i := range k {
		p[i] = ' '
	}
	r.read += k
	return k, nil
}

// blockingReader gives nothing until block is closed.
type blockingReader struct{ block chan struct{} }

func (r *blockingReader) Read([]byte) (int, error) { <-r.block; return 0, io.ErrUnexpectedEOF }

func bufioLine(c net.Conn) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for {
		if _, err := c.Read(one); err != nil {
			return string(b), err
		}
		if one[0] == '\n' {
			return string(b), nil
		}
		b = append(b, one[0])
	}
}
