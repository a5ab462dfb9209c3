package gitdeploy

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/state"
)

func TestRepositories(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"git@github.com:acme/shop.git", "https://github.com/acme/shop", true},
		{"git@github.com:acme/shop.git", "ssh://git@github.com/acme/shop.git", true},
		{"git@github.com:Acme/Shop.git", "git://github.com/acme/shop.git", true},
		{"ssh://git@git.example.com:2222/acme/shop.git", "https://git.example.com/acme/shop/", true},
		{"git@github.com:acme/shop.git", "git@github.com:acme/shop-old.git", false},
		{"git@github.com:acme/shop.git", "git@gitlab.com:acme/shop.git", false},
		{"git@github.com:acme/shop.git", "", false},
	} {
		if got := SameRepository(tc.a, tc.b); got != tc.same {
			t.Errorf("SameRepository(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
	for repo, want := range map[string]string{
		"git@github.com:acme/shop.git":                 "github.com",
		"ssh://git@git.example.com:2222/acme/shop.git": "[git.example.com]:2222",
		"ssh://git.example.com/srv/shop.git":           "git.example.com",
	} {
		if got, err := Endpoint(repo); err != nil || got != want {
			t.Errorf("Endpoint(%q) = %q, %v; want %q", repo, got, err, want)
		}
	}
	for _, bad := range []string{"", "https://github.com/acme/shop.git", "-oProxyCommand=x:y", "github.com", "file:///srv/x.git", "a b:c"} {
		if _, err := Endpoint(bad); err == nil || !strings.Contains(err.Error(), "SSH URL") {
			t.Errorf("Endpoint(%q): %v", bad, err)
		}
	}
	for _, b := range []string{"main", "release/1.x", "feature_2"} {
		if err := CheckBranch(b); err != nil {
			t.Errorf("CheckBranch(%q): %v", b, err)
		}
	}
	for _, b := range []string{"", "-x", "a..b", "a/", "a.lock", "a b", "refs//x"} {
		if err := CheckBranch(b); err == nil {
			t.Errorf("CheckBranch(%q) accepted", b)
		}
	}
}

func TestSetupRefusesBadInput(t *testing.T) {
	l := state.Layout{Root: t.TempDir()}
	ae := state.AppEnv{App: "shop", Env: "prod"}
	good := SetupRequest{Repository: "git@github.com:acme/shop.git", Branch: "main", Secret: strings.Repeat("s", 32),
		KnownHosts: "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"}
	for _, tc := range []struct {
		name string
		edit func(r *SetupRequest)
		want string
	}{
		{"short secret", func(r *SetupRequest) { r.Secret = "x" }, "at least 16"},
		{"no host keys", func(r *SetupRequest) { r.KnownHosts = "" }, "no host key for the git server"},
		{"garbled host keys", func(r *SetupRequest) { r.KnownHosts = "github.com ssh-ed25519 notbase64\n" }, "host keys"},
		{"https URL", func(r *SetupRequest) { r.Repository = "https://github.com/acme/shop.git" }, "only SSH"},
		{"bad branch", func(r *SetupRequest) { r.Branch = "--upload-pack=x" }, "plain branch name"},
	} {
		r := good
		tc.edit(&r)
		if _, err := Setup(l, ae, r, "c"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := os.Stat(l.AppJSON(ae)); err == nil {
		t.Error("a refused setup wrote app.json")
	}
	pub, err := Setup(l, ae, good, "jecloud-shop-prod@web1")
	if err != nil || !strings.HasPrefix(pub, "ssh-ed25519 ") || !strings.HasSuffix(pub, " jecloud-shop-prod@web1") {
		t.Fatalf("Setup: %q %v", pub, err)
	}
	// The environment's directory is 0750 from the start (issue #17: its
	// app's group gets it at the first deploy); git/ is root's alone.
	for dir, want := range map[string]os.FileMode{l.AppDir(ae): 0o750, FilesOf(l, ae).Dir: 0o700, l.AppDir(ae) + "/..": 0o755} {
		if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %v", dir, st.Mode().Perm(), err, want)
		}
	}
	again, err := Setup(l, ae, good, "other")
	if err != nil || again != pub {
		t.Errorf("a second setup made another key: %q", again)
	}
}

func TestWebhookRefusals(t *testing.T) {
	l := state.Layout{Root: t.TempDir()}
	ae := state.AppEnv{App: "shop", Env: "prod"}
	secret := strings.Repeat("k", 32)
	if _, err := Setup(l, ae, SetupRequest{Repository: "git@github.com:acme/shop.git", Branch: "main", Secret: secret,
		KnownHosts: "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"}, "c"); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	starts := 0
	h := &Webhook{Layout: l, Log: &log, Start: func(context.Context) (string, error) { starts++; return "started", nil }}
	commit := strings.Repeat("ab", 20)
	body := `{"ref":"refs/heads/main","after":"` + commit + `","repository":"git@github.com:acme/shop.git"}`
	send := func(method, path, body, sig, delivery string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if sig != "" {
			req.Header.Set("X-Hub-Signature-256", sig)
		}
		if delivery != "" {
			req.Header.Set("X-JeCloud-Delivery", delivery)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	sig := Sign([]byte(secret), []byte(body))
	for _, tc := range []struct {
		name, method, path, body, sig, delivery string
		code                                    int
		want                                    string
	}{
		{"unknown environment", "POST", "/hooks/shop/staging", body, sig, "x1", 401, "not accepted"},
		{"bad path", "POST", "/hooks/shop", body, sig, "x2", 404, "the webhook URL is /hooks/APP/ENV"},
		{"GET", "GET", "/hooks/shop/prod", "", "", "", 405, "send a POST"},
		{"no signature", "POST", "/hooks/shop/prod", body, "", "x3", 401, "not accepted"},
		{"signature of another body", "POST", "/hooks/shop/prod", body, Sign([]byte(secret), []byte("{}")), "x4", 401, "not accepted"},
		{"no delivery ID", "POST", "/hooks/shop/prod", body, sig, "", 400, "needed to refuse replays"},
		{"generic form", "POST", "/hooks/shop/prod/", body, sig, "x5", 202, "accepted"},
		{"replay", "POST", "/hooks/shop/prod", body, sig, "x5", 409, "replay refused"},
	} {
		code, resp := send(tc.method, tc.path, tc.body, tc.sig, tc.delivery)
		if code != tc.code || !strings.Contains(resp, tc.want) {
			t.Errorf("%s: %d %s; want %d %q", tc.name, code, resp, tc.code, tc.want)
		}
	}
	var a state.App
	if err := state.Read(l.AppJSON(ae), &a); err != nil || a.Git.Requested == nil || a.Git.Requested.Commit != commit || a.Git.Requested.Delivery != "x5" {
		t.Errorf("app.json git: %+v %v", a.Git, err)
	}
	if starts != 1 {
		t.Errorf("%d roll-forwards started, want 1", starts)
	}
	if n := strings.Count(log.String(), "\n"); n != 8 {
		t.Errorf("%d log lines, want one per delivery:\n%s", n, log.String())
	}
	if code, _ := send("POST", "/hooks/shop/prod", body, sig, "x6"); code != http.StatusAccepted {
		t.Errorf("a new delivery of the same push: %d", code)
	}
}
