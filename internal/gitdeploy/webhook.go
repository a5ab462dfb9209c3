package gitdeploy

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"
	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/plan"
	"github.com/jecloud/jecloud/internal/state"
)

// MaxPayload is the largest event accepted. It is read, and held, before
// its signature can be checked, so it bounds what an unauthenticated
// request costs: GitHub's push events are a few KB to a few hundred (it
// sends at most 20 commits in one), far below this.
const MaxPayload = 4 << 20

// MaxUnverified is how many deliveries are served at once before their
// signature is verified; more are answered 503 at once. With MaxPayload it
// bounds the memory unauthenticated requests can take (16 MiB).
const MaxUnverified = 4

// MaxHeaderBytes caps a request's header lines (GitHub's are under 2 KB).
const MaxHeaderBytes = 16 << 10

// maxDeliveries is how many delivery IDs an environment remembers.
const maxDeliveries = 1000

// deliveryRE is compiled on first use: jeagent compiles no regular
// expression at start-up (docs/benchmarks.md).
var deliveryRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._:-]{1,100}$`) })

// IsCommit reports whether s is a full commit ID (SHA-1 or SHA-256).
func IsCommit(s string) bool { return state.IsCommit(s) }

// Webhook serves POST /hooks/APP/ENV: GitHub push events, and the generic
// form documented in docs/git.md. A push of the environment's branch and
// repository, signed with its secret and not seen before, is recorded in
// app.json (git.requested) and Start is called; the build and the deploy
// happen in the roll-forward, so the answer comes at once.
type Webhook struct {
	Layout state.Layout
	// Start starts a roll-forward and says how.
	Start func(ctx context.Context) (string, error)
	// Log gets one line per delivery: what was done with it and why.
	Log io.Writer
	Now func() time.Time

	semOnce sync.Once
	sem     chan struct{} // one token per delivery not yet verified
}

// Server returns an HTTP server for h with the limits an unauthenticated
// sender may not go past: header size, and how long the header and the
// whole request may take to arrive.
func (h *Webhook) Server() *http.Server {
	return &http.Server{
		Handler:           h,
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       30 * time.Second,
	}
}

func (h *Webhook) tokens() chan struct{} {
	h.semOnce.Do(func() { h.sem = make(chan struct{}, MaxUnverified) })
	return h.sem
}

// unverified is how many deliveries are being served before their
// signature is verified.
func (h *Webhook) unverified() int { return len(h.tokens()) }

// answer is the JSON body of every response.
type answer struct {
	Status string `json:"status"` // "accepted", "ignored", "refused"
	Reason string `json:"reason,omitempty"`
	Commit string `json:"commit,omitempty"`
}

func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	code, ans, logged, ae := h.handle(r)
	who := "webhook"
	if ae != (state.AppEnv{}) {
		who = "webhook " + ae.String()
	}
	delivery := "(none)"
	if d := deliveryID(r); d != "" {
		delivery = q(d)
	}
	reason := ans.Reason
	if logged != "" {
		reason = logged
	}
	fmt.Fprintf(h.Log, "%s: delivery %s from %s: %s %s\n", who, delivery, r.RemoteAddr, ans.Status, reason)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(ans)
}

// q is s for a log line or an answer: bare when it has only characters
// that cannot end a line, start an escape sequence or look like the log
// line's own words (letters, digits and ._:/@+-), else strconv.Quote'd.
// Everything that comes from the request goes through it.
func q(s string) string {
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._:/@+-", c) >= 0) {
			return strconv.Quote(s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}

// refusal is why a delivery ends without a push being recorded: its HTTP
// status code, the answer's status ("refused", or "ignored" for events
// that are fine but deploy nothing) and the reason, which goes in the
// answer and the log line. The steps of handle return it as their error.
type refusal struct {
	code           int
	status, reason string
	// log, if set, is the reason for the log line when the answer must
	// not tell it (see notAccepted).
	log string
}

func (e *refusal) Error() string { return e.status + " " + e.reason }

// answer returns the status code and the JSON answer for the refusal.
func (e *refusal) answer() (int, answer) {
	return e.code, answer{Status: e.status, Reason: e.reason}
}

// refused is a delivery refused with code: an error of the sender's (or of
// this server's, with 503), said in the answer.
func refused(code int, format string, args ...any) error {
	return &refusal{code: code, status: "refused", reason: fmt.Sprintf(format, args...)}
}

// ignored is a delivery that is well-formed but asks for no deploy.
func ignored(code int, format string, args ...any) error {
	return &refusal{code: code, status: "ignored", reason: fmt.Sprintf(format, args...)}
}

func deliveryID(r *http.Request) string {
	for _, k := range []string{"X-GitHub-Delivery", "X-JeCloud-Delivery"} {
		if v := r.Header.Get(k); v != "" {
			return v
		}
	}
	return ""
}

// pushEvent is the part of a push event the webhook reads. The generic
// form has the same fields, with repository a plain URL.
type pushEvent struct {
	Ref        string          `json:"ref"`
	After      string          `json:"after"`
	Deleted    bool            `json:"deleted"`
	Repository json.RawMessage `json:"repository"`
}

func (e pushEvent) repositories() []string {
	var s string
	if json.Unmarshal(e.Repository, &s) == nil {
		return []string{s}
	}
	var o struct {
		SSHURL   string `json:"ssh_url"`
		CloneURL string `json:"clone_url"`
		GitURL   string `json:"git_url"`
		HTMLURL  string `json:"html_url"`
		URL      string `json:"url"`
	}
	json.Unmarshal(e.Repository, &o)
	return []string{o.SSHURL, o.CloneURL, o.GitURL, o.HTMLURL, o.URL}
}

// handle answers a delivery: it verifies it (endpoint, then verify), parses
// the event, records the push in app.json and starts a roll-forward. It
// returns the status code, the answer and the environment, if the URL
// named a valid one (for the log line).
//
// At most MaxUnverified deliveries are served at once until their
// signature is verified; more are refused with 503 at once.
func (h *Webhook) handle(r *http.Request) (int, answer, string, state.AppEnv) {
	select {
	case h.tokens() <- struct{}{}:
	default:
		code, a, _ := answerOf(refused(http.StatusServiceUnavailable, "busy: %d deliveries are being received; retry later", MaxUnverified))
		return code, a, "", state.AppEnv{}
	}
	verified := sync.OnceFunc(func() { <-h.tokens() })
	defer verified()
	ae, err := endpoint(r)
	if err != nil {
		code, a, logged := answerOf(err)
		return code, a, logged, state.AppEnv{}
	}
	a, err := h.accept(r, ae, verified)
	if err != nil {
		code, a, logged := answerOf(err)
		return code, a, logged, ae
	}
	return http.StatusAccepted, a, "", ae
}

// answerOf returns the status code and answer of a step's error, and the
// log line's reason if it differs from the answer's. The steps return only
// refusals; anything else would be a bug, answered with 500.
func answerOf(err error) (int, answer, string) {
	var rf *refusal
	if !errors.As(err, &rf) {
		rf = &refusal{code: http.StatusInternalServerError, status: "refused", reason: err.Error()}
	}
	code, a := rf.answer()
	return code, a, rf.log
}

// endpoint returns the environment the URL path /hooks/APP/ENV names.
func endpoint(r *http.Request) (state.AppEnv, error) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/hooks/")
	parts := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	if !ok || len(parts) != 2 {
		return state.AppEnv{}, refused(http.StatusNotFound, "no such endpoint %s: the webhook URL is /hooks/APP/ENV", q(r.URL.Path))
	}
	ae := state.AppEnv{App: parts[0], Env: parts[1]}
	if err := ae.Check(); err != nil {
		return state.AppEnv{}, refused(http.StatusNotFound, "%v", err)
	}
	return ae, nil
}

// accept takes a delivery to ae's endpoint through verify, parse and
// record, and then starts a roll-forward: it returns the "accepted"
// answer, or the refusal of the step that stopped it.
func (h *Webhook) accept(r *http.Request, ae state.AppEnv, verified func()) (answer, error) {
	d, err := h.verify(r, ae)
	if err != nil {
		return answer{}, err
	}
	verified()
	commit, err := d.parse(r.Header.Get("X-GitHub-Event"))
	if err != nil {
		return answer{}, err
	}
	if err := h.record(d, commit); err != nil {
		return answer{}, err
	}
	return h.start(d, commit), nil
}

// delivery is a verified delivery: a POST to an environment set up for git
// deploys, signed with its secret, with a delivery ID not seen before.
type delivery struct {
	ae   state.AppEnv
	git  *state.Git // the environment's git settings when it arrived
	id   string     // X-GitHub-Delivery or X-JeCloud-Delivery
	body []byte
}

// verify checks, in this order, that r is a POST, that ae is set up for
// git deploys, that the payload is signed with its secret and that the
// delivery ID is usable and new; the ID is then remembered, so that a
// replay is refused. An environment that is not set up (or has no secret)
// and a bad signature get the same answer (notAccepted), after the same
// work: the payload is read and its HMAC computed either way.
func (h *Webhook) verify(r *http.Request, ae state.AppEnv) (*delivery, error) {
	if r.Method != http.MethodPost {
		return nil, refused(http.StatusMethodNotAllowed, "%s: send a POST", q(r.Method))
	}
	f := FilesOf(h.Layout, ae)
	var app state.App
	var why string // why the environment cannot take deliveries
	secret, secretErr := f.ReadSecret()
	if err := state.Read(h.Layout.AppJSON(ae), &app); err != nil || app.Git == nil {
		why = fmt.Sprintf("%s is not set up for git deploys here (jepush git:setup)", ae)
	} else if secretErr != nil {
		why = secretErr.Error()
	}
	if why != "" {
		secret = make([]byte, 32)
		rand.Read(secret)
	}
	body, signed, err := readSigned(r, secret)
	switch {
	case err != nil:
		return nil, err
	case why != "":
		return nil, notAccepted(why)
	case !signed:
		return nil, notAccepted("bad signature: X-Hub-Signature-256 is not the HMAC-SHA256 of the payload with this environment's secret (check the webhook's secret)")
	}
	id := deliveryID(r)
	if err := h.checkNew(f, id); err != nil {
		return nil, err
	}
	return &delivery{ae: ae, git: app.Git, id: id, body: body}, nil
}

// notAccepted is the one answer to a delivery whose signature is bad and to
// one for an environment that is not set up here: a prober cannot tell
// them apart. The log line says which it was (why).
func notAccepted(why string) error {
	return &refusal{code: http.StatusUnauthorized, status: "refused",
		reason: "not accepted: no app environment of this URL is set up here, or X-Hub-Signature-256 is not the HMAC-SHA256 of the payload with its secret (the webhook's journal on the server says which)",
		log:    why}
}

// readSigned reads the payload (at most MaxPayload bytes; none if its
// Content-Length says more) and reports whether its X-Hub-Signature-256 is
// right for secret.
func readSigned(r *http.Request, secret []byte) ([]byte, bool, error) {
	tooLarge := func(err error) error {
		return refused(http.StatusRequestEntityTooLarge, "payload over %d bytes or cut short: %v", MaxPayload, err)
	}
	if r.ContentLength > MaxPayload {
		return nil, false, tooLarge(fmt.Errorf("Content-Length is %d", r.ContentLength))
	}
	buf := bytes.NewBuffer(make([]byte, 0, max(min(r.ContentLength, MaxPayload)+1, 512)))
	if _, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, MaxPayload)); err != nil {
		return nil, false, tooLarge(err)
	}
	body := buf.Bytes()
	return body, validSignature(secret, body, r.Header.Get("X-Hub-Signature-256")), nil
}

// checkNew refuses a delivery ID that is unusable or was received before,
// and remembers a new one.
func (h *Webhook) checkNew(f Files, id string) error {
	if !deliveryRE().MatchString(id) {
		return refused(http.StatusBadRequest, "no usable delivery ID (X-GitHub-Delivery or X-JeCloud-Delivery): it is needed to refuse replays")
	}
	if seen, err := h.remember(f, id); err != nil {
		return refused(http.StatusServiceUnavailable, "recording delivery %s: %v", q(id), err)
	} else if seen {
		return refused(http.StatusConflict, "delivery %s was received before: replay refused", q(id))
	}
	return nil
}

// parse reads the delivery as a push event (event is X-GitHub-Event: "" in
// the generic form) and returns the commit to deploy: the head of the
// environment's branch, pushed to its repository. Other events, other
// branches and deleted branches are ignored.
func (d *delivery) parse(event string) (string, error) {
	switch event {
	case "ping":
		return "", ignored(http.StatusOK, "ping: the webhook reaches this server")
	case "", "push":
	default:
		return "", ignored(http.StatusAccepted, "event %s: only push events deploy", strconv.Quote(event))
	}
	var ev pushEvent
	if err := json.Unmarshal(d.body, &ev); err != nil {
		return "", refused(http.StatusBadRequest, "payload is not a push event: %v", err)
	}
	g := d.git
	repos := ev.repositories()
	if !slices.ContainsFunc(repos, func(u string) bool { return SameRepository(u, g.Repository) }) {
		return "", refused(http.StatusForbidden, "unknown repository %s: %s follows %s", firstNonEmpty(repos), d.ae, q(g.Repository))
	}
	if want := "refs/heads/" + g.Branch; ev.Ref != want {
		return "", ignored(http.StatusAccepted, "push to %s: %s deploys branch %s", q(ev.Ref), d.ae, g.Branch)
	}
	if ev.Deleted || strings.Trim(ev.After, "0") == "" {
		return "", ignored(http.StatusAccepted, "branch %s was deleted: nothing to deploy", g.Branch)
	}
	if !IsCommit(ev.After) {
		return "", refused(http.StatusBadRequest, "after = %q is not a commit ID", ev.After)
	}
	return ev.After, nil
}

// record writes commit into app.json as git.requested, and clears the
// backoff of a failed build: a new push is tried at once.
func (h *Webhook) record(d *delivery, commit string) error {
	now := h.now()
	if _, err := state.UpdateApp(h.Layout.AppJSON(d.ae), func(a *state.App) error {
		if a.Git == nil {
			return errors.New("git deploys were turned off meanwhile")
		}
		a.Git.Requested = &state.GitCommit{Commit: commit, Delivery: d.id, Date: now}
		if b := a.Backoff; b != nil && b.Step == plan.GitBuild {
			a.Backoff = nil // a new push: try at once
		}
		return nil
	}); err != nil {
		return refused(http.StatusServiceUnavailable, "recording the push in %s: %v", h.Layout.AppJSON(d.ae), err)
	}
	return nil
}

// start starts a roll-forward for the recorded commit and returns the
// "accepted" answer; if it cannot start, the next timer run deploys it,
// and the answer says so.
func (h *Webhook) start(d *delivery, commit string) answer {
	how, err := h.Start(context.Background())
	reason := fmt.Sprintf("commit %s of %s: build and deploy in the roll-forward (%s)", commit[:12], d.git.Branch, how)
	if err != nil {
		reason = fmt.Sprintf("commit %s of %s recorded; the next timer run deploys it (starting a roll-forward now failed: %v)", commit[:12], d.git.Branch, err)
	}
	return answer{Status: "accepted", Reason: reason, Commit: commit}
}

// firstNonEmpty is the first repository given, quoted by q.
func firstNonEmpty(ss []string) string {
	for _, s := range ss {
		if s != "" {
			return q(s)
		}
	}
	return "(none given)"
}

func (h *Webhook) now() time.Time {
	if h.Now != nil {
		return h.Now().UTC().Truncate(time.Second)
	}
	return state.Now()
}

// validSignature checks GitHub's X-Hub-Signature-256 ("sha256=" and the
// hex HMAC-SHA256 of the body), in constant time.
func validSignature(secret, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// Sign returns the X-Hub-Signature-256 value of body (for tests and the
// generic form's senders).
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// remember records delivery and reports whether it was seen before. The
// last maxDeliveries IDs are kept, one per line, under a lock.
func (h *Webhook) remember(f Files, delivery string) (bool, error) {
	lk := flock.New(f.Deliveries() + ".lock")
	if err := lk.Lock(); err != nil {
		return false, err
	}
	defer lk.Unlock()
	b, err := os.ReadFile(f.Deliveries())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	ids := strings.Fields(string(b))
	if slices.Contains(ids, delivery) {
		return true, nil
	}
	ids = append(ids, delivery)
	if len(ids) > maxDeliveries {
		ids = ids[len(ids)-maxDeliveries:]
	}
	return false, atomicfile.WriteFile(f.Deliveries(), []byte(strings.Join(ids, "\n")+"\n"), 0o600)
}
