package gitdeploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/plan"
	"github.com/jecloud/jecloud/internal/state"
)

// failingReader is a request body cut short.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// TestWebhookAnswers pins, for every way a delivery ends, the status code,
// the JSON answer and the log line, word for word.
func TestWebhookAnswers(t *testing.T) {
	secret := strings.Repeat("k", 32)
	commit := strings.Repeat("ab", 20)
	repo := "git@github.com:acme/shop.git"
	push := func(ref, after, repo string) string {
		return `{"ref":"` + ref + `","after":"` + after + `","repository":"` + repo + `"}`
	}
	good := push("refs/heads/main", commit, repo)
	for _, tc := range []struct {
		name     string
		method   string // "" is POST
		path     string // "" is /hooks/shop/prod
		body     string // "" is good
		reader   io.Reader
		sig      string // "" is the body's own; "-" is none
		delivery string // "" is "d1"; "-" is none
		event    string
		prepare  func(t *testing.T, l state.Layout, h *Webhook)
		code     int
		answer   string
		log      string
	}{
		{name: "bad path", path: "/hooks/shop", code: 404,
			answer: `{"status":"refused","reason":"no such endpoint /hooks/shop: the webhook URL is /hooks/APP/ENV"}`,
			log:    `webhook: delivery d1 from 192.0.2.1:1234: refused no such endpoint /hooks/shop: the webhook URL is /hooks/APP/ENV`},
		{name: "bad environment name", path: "/hooks/shop/Prod!", code: 404,
			answer: `{"status":"refused","reason":"invalid environment name \"Prod!\": use 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit"}`,
			log:    `webhook: delivery d1 from 192.0.2.1:1234: refused invalid environment name "Prod!": use 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit`},
		{name: "GET", method: "GET", sig: "-", delivery: "-", code: 405,
			answer: `{"status":"refused","reason":"GET: send a POST"}`,
			log:    `webhook shop/prod: delivery (none) from 192.0.2.1:1234: refused GET: send a POST`},
		{name: "not set up", path: "/hooks/shop/staging", code: 401, // the same answer as a bad signature (issue #17)
			answer: `{"status":"refused","reason":"not accepted: no app environment of this URL is set up here, or X-Hub-Signature-256 is not the HMAC-SHA256 of the payload with its secret (the webhook's journal on the server says which)"}`,
			log:    `webhook shop/staging: delivery d1 from 192.0.2.1:1234: refused shop/staging is not set up for git deploys here (jepush git:setup)`},
		{name: "no secret", code: 401, // the same answer as a bad signature (issue #17)
			prepare: func(t *testing.T, l state.Layout, h *Webhook) {
				os.Remove(FilesOf(l, state.AppEnv{App: "shop", Env: "prod"}).Secret())
			},
			answer: `{"status":"refused","reason":"not accepted: no app environment of this URL is set up here, or X-Hub-Signature-256 is not the HMAC-SHA256 of the payload with its secret (the webhook's journal on the server says which)"}`,
			log:    `webhook shop/prod: delivery d1 from 192.0.2.1:1234: refused open ROOT/shop/prod/git/webhook.secret: no such file or directory`},
		{name: "body cut short", reader: failingReader{}, sig: "-", code: 413,
			answer: `{"status":"refused","reason":"payload over 4194304 bytes or cut short: unexpected EOF"}`,
			log:    `webhook shop/prod: delivery d1 from 192.0.2.1:1234: refused payload over 4194304 bytes or cut short: unexpected EOF`},
		{name: "no signature", sig: "-", code: 401,
			answer: `{"status":"refused","reason":"not accepted: no app environment of this URL is set up here, or X-Hub-Signature-256 is not the HMAC-SHA256 of the payload with its secret (the webhook's journal on the server says which)"}`,
			log:    `webhook shop/prod: delivery d1 from 192.0.2.1:1234: refused bad signature: X-Hub-Signature-256 is not the HMAC-SHA256 of the payload with this environment's secret (check the webhook's secret)`},
		{name: "bad delivery ID", delivery: "no spaces", code: 400,
			answer: `{"status":"refused","reason":"no usable delivery ID (X-GitHub-Delivery or X-JeCloud-Delivery): it is needed to refuse replays"}`,
			log:    `webhook shop/prod: delivery "no spaces" from 192.0.2.1:1234: refused no usable delivery ID (X-GitHub-Delivery or X-JeCloud-Delivery): it is needed to refuse replays`},
		{name: "deliveries unreadable", code: 503,
			prepare: func(t *testing.T, l state.Layout, h *Webhook) {
				if err := os.Mkdir(FilesOf(l, state.AppEnv{App: "shop", Env: "prod"}).Deliveries(), 0o700); err != nil {
					t.Fatal(err)
				}
			},
			answer: `{"status":"refused","reason":"recording delivery d1: read ROOT/shop/prod/git/deliveries: is a directory"}`,
			log:    `webhook shop/prod: delivery d1 from 192.0.2.1:1234: refused recording delivery d1: read ROOT/shop/prod/git/deliveries: is a directory`},
		{name: "replay", code: 409,
			prepare: func(t *testing.T, l state.Layout, h *Webhook) {
				if _, err := h.remember(FilesOf(l, state.AppEnv{App: "shop", Env: "prod"}), "d1"); err != nil {
					t.Fatal(err)
				}
			},
			answer: `{"status":"refused","reason":"delivery d1 was received before: replay refused"}`,
			log:    `webhook shop/prod: delivery d1 from 192.0.2.1:1234: refused delivery d1 was received before: replay refused`},
		{name: "ping", event: "ping", code: 200,
			answer: `{"status":"ignored","reason":"ping: the webhook reaches this server"}`,
			log:    `webhook shop/prod: delivery d1 from 192.0.2.1:1234: ignored ping: the webhook reaches this server`},
		{name: "other event", event: "issues", code: 202,
			answer: `{"status":"ignored","reason":"event \"issues\": only push events deploy"}`,
			log:    `webhook shop/prod: delivery d1 from 192.0.2.1:1234: ignored event "issues": only push events deploy`},
		{name: "not JSON", body: "not json", event: "push", code: 400,
			answer: `{"status":"refused","reason":"payload is not a push event: invalid character 'o' in literal null (expecting 'u')"}`,
			log:    `webhook shop/prod: delivery d1 from 192.0.2.1:1234: refused payload is not a push event: invalid character 'o' in literal null (expecting 'u')`},
		{name: "unknown repository", body: push("refs/heads/main", commit, "git@github.com:evil/shop.git"), code: 403,
			answer: `{"status":"refused","reason":"unknown repository git@github.com:evil/shop.git: shop/prod follows git@github.com:acme/shop.git"}`,
			log:    `webhook shop/prod: delivery d1 from 192.0.2.1:1234: refused unknown repository git@github.com:evil/shop.git: shop/prod follows git@github.com:acme/shop.git`},
		{name: "no repository", body: `{"ref":"refs/heads/main","after":"` + commit + `","repository":{}}`, code: 403,
			answer: `{"status":"refused","reason":"unknown repository (none given): shop/prod follows git@github.com:acme/shop.git"}`,
			log:    `webhook shop/prod: delivery d1 from 192.0.2.1:1234: refused unknown repository (none given): shop/prod follows git@github.com:acme/shop.git`},
		{name: "other branch", body: push("refs/heads/dev", commit, repo), code: 202,
			answer: `{"status":"ignored","reason":"push to refs/heads/dev: shop/prod deploys branch main"}`,
			log:    `webhook shop/prod: delivery d1 from 192.0.2.1:1234: ignored push to refs/heads/dev: shop/prod deploys branch main`},
		{name: "branch deleted", body: push("refs/heads/main", strings.Repeat("0", 40), repo), code: 202,
			answer: `{"status":"ignored","reason":"branch main was deleted: nothing to deploy"}`,
			log:    `webhook shop/prod: delivery d1 from 192.0.2.1:1234: ignored branch main was deleted: nothing to deploy`},
		{name: "not a commit", body: push("refs/heads/main", "abc", repo), code: 400,
			answer: `{"status":"refused","reason":"after = \"abc\" is not a commit ID"}`,
			log:    `webhook shop/prod: delivery d1 from 192.0.2.1:1234: refused after = "abc" is not a commit ID`},
		{name: "turned off meanwhile", code: 503,
			prepare: func(t *testing.T, l state.Layout, h *Webhook) {
				h.Now = func() time.Time {
					state.UpdateApp(l.AppJSON(state.AppEnv{App: "shop", Env: "prod"}), func(a *state.App) error { a.Git = nil; return nil })
					return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
				}
			},
			answer: `{"status":"refused","reason":"recording the push in ROOT/shop/prod/app.json: git deploys were turned off meanwhile"}`,
			log:    `webhook shop/prod: delivery d1 from 192.0.2.1:1234: refused recording the push in ROOT/shop/prod/app.json: git deploys were turned off meanwhile`},
		{name: "accepted", code: 202,
			answer: `{"status":"accepted","reason":"commit abababababab of main: build and deploy in the roll-forward (started)","commit":"` + commit + `"}`,
			log:    `webhook shop/prod: delivery d1 from 192.0.2.1:1234: accepted commit abababababab of main: build and deploy in the roll-forward (started)`},
		{name: "accepted, start failed", code: 202,
			prepare: func(t *testing.T, l state.Layout, h *Webhook) {
				h.Start = func(context.Context) (string, error) { return "", errors.New("boom") }
			},
			answer: `{"status":"accepted","reason":"commit abababababab of main recorded; the next timer run deploys it (starting a roll-forward now failed: boom)","commit":"` + commit + `"}`,
			log:    `webhook shop/prod: delivery d1 from 192.0.2.1:1234: accepted commit abababababab of main recorded; the next timer run deploys it (starting a roll-forward now failed: boom)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			l := state.Layout{Root: root}
			ae := state.AppEnv{App: "shop", Env: "prod"}
			if _, err := Setup(l, ae, SetupRequest{Repository: repo, Branch: "main", Secret: secret,
				KnownHosts: "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"}, "c"); err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			h := &Webhook{Layout: l, Log: &log, Start: func(context.Context) (string, error) { return "started", nil }}
			if tc.prepare != nil {
				tc.prepare(t, l, h)
			}
			method, path, body := tc.method, tc.path, tc.body
			if method == "" {
				method = "POST"
			}
			if path == "" {
				path = "/hooks/shop/prod"
			}
			if body == "" {
				body = good
			}
			var r io.Reader = strings.NewReader(body)
			if tc.reader != nil {
				r = tc.reader
			}
			req := httptest.NewRequest(method, path, r)
			req.RemoteAddr = "192.0.2.1:1234"
			switch tc.sig {
			case "":
				req.Header.Set("X-Hub-Signature-256", Sign([]byte(secret), []byte(body)))
			case "-":
			default:
				req.Header.Set("X-Hub-Signature-256", tc.sig)
			}
			switch tc.delivery {
			case "":
				req.Header.Set("X-GitHub-Delivery", "d1")
			case "-":
			default:
				req.Header.Set("X-GitHub-Delivery", tc.delivery)
			}
			if tc.event != "" {
				req.Header.Set("X-GitHub-Event", tc.event)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			gotAnswer := strings.ReplaceAll(strings.TrimSuffix(rec.Body.String(), "\n"), root, "ROOT")
			gotLog := strings.ReplaceAll(log.String(), root, "ROOT")
			if rec.Code != tc.code || gotAnswer != tc.answer {
				t.Errorf("got  %d %s\nwant %d %s", rec.Code, gotAnswer, tc.code, tc.answer)
			}
			if gotLog != tc.log+"\n" {
				t.Errorf("log:\ngot  %q\nwant %q", gotLog, tc.log+"\n")
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

// TestWebhookClearsBuildBackoff: a new push clears the backoff of a failed
// build (it is tried at once), not that of another step.
func TestWebhookClearsBuildBackoff(t *testing.T) {
	secret := strings.Repeat("k", 32)
	commit := strings.Repeat("cd", 20)
	body := `{"ref":"refs/heads/main","after":"` + commit + `","repository":"git@github.com:acme/shop.git"}`
	for step, kept := range map[string]bool{plan.GitBuild: false, "deploy": true} {
		l := state.Layout{Root: t.TempDir()}
		ae := state.AppEnv{App: "shop", Env: "prod"}
		if _, err := Setup(l, ae, SetupRequest{Repository: "git@github.com:acme/shop.git", Branch: "main", Secret: secret,
			KnownHosts: "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"}, "c"); err != nil {
			t.Fatal(err)
		}
		if _, err := state.UpdateApp(l.AppJSON(ae), func(a *state.App) error {
			a.Backoff = &state.Backoff{Step: step, Failures: 2, LastError: "x"}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		h := &Webhook{Layout: l, Log: io.Discard, Start: func(context.Context) (string, error) { return "started", nil },
			Now: func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }}
		req := httptest.NewRequest("POST", "/hooks/shop/prod", strings.NewReader(body))
		req.Header.Set("X-Hub-Signature-256", Sign([]byte(secret), []byte(body)))
		req.Header.Set("X-GitHub-Delivery", "d1")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 202 {
			t.Fatalf("%s: %d %s", step, rec.Code, rec.Body)
		}
		var a state.App
		if err := state.Read(l.AppJSON(ae), &a); err != nil {
			t.Fatal(err)
		}
		if (a.Backoff != nil) != kept {
			t.Errorf("backoff of %s after a push: %+v, want kept=%v", step, a.Backoff, kept)
		}
		if r := a.Git.Requested; r == nil || r.Commit != commit || r.Delivery != "d1" || !r.Date.Equal(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)) {
			t.Errorf("requested: %+v", a.Git)
		}
	}
}

// TestAnswerOf: a refusal, even wrapped, gives its own code and answer.
func TestAnswerOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		want answer
	}{
		{refused(409, "delivery %s was received before: replay refused", "d1"), 409, answer{Status: "refused", Reason: "delivery d1 was received before: replay refused"}},
		{ignored(200, "ping: the webhook reaches this server"), 200, answer{Status: "ignored", Reason: "ping: the webhook reaches this server"}},
		{fmt.Errorf("step: %w", refused(403, "no")), 403, answer{Status: "refused", Reason: "no"}},
		{errors.New("not a refusal"), 500, answer{Status: "refused", Reason: "not a refusal"}},
	} {
		if code, a, _ := answerOf(tc.err); code != tc.code || a != tc.want {
			t.Errorf("%v: %d %+v, want %d %+v", tc.err, code, a, tc.code, tc.want)
		}
	}
}
