package gitdeploy

import (
	"context"
	"crypto/hmac"
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
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"
	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/state"
)

// MaxPayload is the largest event accepted (GitHub caps theirs at 25 MB).
const MaxPayload = 25 << 20

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
}

// answer is the JSON body of every response.
type answer struct {
	Status string `json:"status"` // "accepted", "ignored", "refused"
	Reason string `json:"reason,omitempty"`
	Commit string `json:"commit,omitempty"`
}

func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	code, ans, ae := h.handle(r)
	who := "webhook"
	if ae != (state.AppEnv{}) {
		who = "webhook " + ae.String()
	}
	delivery := deliveryID(r)
	if delivery == "" {
		delivery = "(none)"
	}
	fmt.Fprintf(h.Log, "%s: delivery %s from %s: %s %s\n", who, delivery, r.RemoteAddr, ans.Status, ans.Reason)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(ans)
}

func refused(code int, format string, args ...any) (int, answer) {
	return code, answer{Status: "refused", Reason: fmt.Sprintf(format, args...)}
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

func (h *Webhook) handle(r *http.Request) (int, answer, state.AppEnv) {
	var ae state.AppEnv
	rest, ok := strings.CutPrefix(r.URL.Path, "/hooks/")
	parts := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	if !ok || len(parts) != 2 {
		code, a := refused(http.StatusNotFound, "no such endpoint %s: the webhook URL is /hooks/APP/ENV", r.URL.Path)
		return code, a, ae
	}
	ae = state.AppEnv{App: parts[0], Env: parts[1]}
	if err := ae.Check(); err != nil {
		code, a := refused(http.StatusNotFound, "%v", err)
		return code, a, state.AppEnv{}
	}
	if r.Method != http.MethodPost {
		code, a := refused(http.StatusMethodNotAllowed, "%s: send a POST", r.Method)
		return code, a, ae
	}
	var app state.App
	if err := state.Read(h.Layout.AppJSON(ae), &app); err != nil || app.Git == nil {
		code, a := refused(http.StatusNotFound, "%s is not set up for git deploys here (jepush git:setup)", ae)
		return code, a, ae
	}
	f := FilesOf(h.Layout, ae)
	secret, err := f.ReadSecret()
	if err != nil {
		code, a := refused(http.StatusServiceUnavailable, "%v", err)
		return code, a, ae
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxPayload))
	if err != nil {
		code, a := refused(http.StatusRequestEntityTooLarge, "payload over %d bytes or cut short: %v", MaxPayload, err)
		return code, a, ae
	}
	if !validSignature(secret, body, r.Header.Get("X-Hub-Signature-256")) {
		code, a := refused(http.StatusUnauthorized, "bad signature: X-Hub-Signature-256 is not the HMAC-SHA256 of the payload with this environment's secret (check the webhook's secret)")
		return code, a, ae
	}
	delivery := deliveryID(r)
	if !deliveryRE().MatchString(delivery) {
		code, a := refused(http.StatusBadRequest, "no usable delivery ID (X-GitHub-Delivery or X-JeCloud-Delivery): it is needed to refuse replays")
		return code, a, ae
	}
	if seen, err := h.remember(f, delivery); err != nil {
		code, a := refused(http.StatusServiceUnavailable, "recording delivery %s: %v", delivery, err)
		return code, a, ae
	} else if seen {
		code, a := refused(http.StatusConflict, "delivery %s was received before: replay refused", delivery)
		return code, a, ae
	}
	switch ev := r.Header.Get("X-GitHub-Event"); ev {
	case "ping":
		return http.StatusOK, answer{Status: "ignored", Reason: "ping: the webhook reaches this server"}, ae
	case "", "push":
	default:
		return http.StatusAccepted, answer{Status: "ignored", Reason: fmt.Sprintf("event %q: only push events deploy", ev)}, ae
	}
	var ev pushEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		code, a := refused(http.StatusBadRequest, "payload is not a push event: %v", err)
		return code, a, ae
	}
	g := app.Git
	repos := ev.repositories()
	if !slices.ContainsFunc(repos, func(u string) bool { return SameRepository(u, g.Repository) }) {
		code, a := refused(http.StatusForbidden, "unknown repository %s: %s follows %s", firstNonEmpty(repos), ae, g.Repository)
		return code, a, ae
	}
	if want := "refs/heads/" + g.Branch; ev.Ref != want {
		return http.StatusAccepted, answer{Status: "ignored", Reason: fmt.Sprintf("push to %s: %s deploys branch %s", ev.Ref, ae, g.Branch)}, ae
	}
	if ev.Deleted || strings.Trim(ev.After, "0") == "" {
		return http.StatusAccepted, answer{Status: "ignored", Reason: fmt.Sprintf("branch %s was deleted: nothing to deploy", g.Branch)}, ae
	}
	if !IsCommit(ev.After) {
		code, a := refused(http.StatusBadRequest, "after = %q is not a commit ID", ev.After)
		return code, a, ae
	}
	now := h.now()
	if _, err := state.UpdateApp(h.Layout.AppJSON(ae), func(a *state.App) error {
		if a.Git == nil {
			return errors.New("git deploys were turned off meanwhile")
		}
		a.Git.Requested = &state.GitCommit{Commit: ev.After, Delivery: delivery, Date: now}
		if b := a.Backoff; b != nil && b.Step == "git:build" {
			a.Backoff = nil // a new push: try at once
		}
		return nil
	}); err != nil {
		code, a := refused(http.StatusServiceUnavailable, "recording the push in %s: %v", h.Layout.AppJSON(ae), err)
		return code, a, ae
	}
	how, err := h.Start(context.Background())
	reason := fmt.Sprintf("commit %s of %s: build and deploy in the roll-forward (%s)", ev.After[:12], g.Branch, how)
	if err != nil {
		reason = fmt.Sprintf("commit %s of %s recorded; the next timer run deploys it (starting a roll-forward now failed: %v)", ev.After[:12], g.Branch, err)
	}
	return http.StatusAccepted, answer{Status: "accepted", Reason: reason, Commit: ev.After}, ae
}

func firstNonEmpty(ss []string) string {
	for _, s := range ss {
		if s != "" {
			return s
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
