package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/state"
)

// template is a root with web/prod live at v1 (v2 uploaded) and api/prod
// with a1 uploaded; cloneTemplate copies it for each case.
type template struct {
	dir        string
	v1, v2, a1 string
}

func newTemplate(t *testing.T) template {
	t.Helper()
	tp := template{dir: t.TempDir()}
	root := tp.dir
	if r := run(t, root, nil, nil, "init"); r.code != 0 {
		t.Fatalf("init: %+v", r)
	}
	var d1, d2, da []byte
	tp.v1, d1 = makeBundle(t, map[string]string{"x": "1"})
	tp.v2, d2 = makeBundle(t, map[string]string{"x": "2"})
	tp.a1, da = makeBundle(t, map[string]string{"x": "api"})
	run(t, root, nil, d1, "receive", "web", "prod", tp.v1)
	run(t, root, nil, d2, "receive", "web", "prod", tp.v2)
	run(t, root, nil, da, "receive", "api", "prod", tp.a1)
	for _, d := range [][2]string{{"web", tp.v1}, {"api", tp.a1}} {
		if r := run(t, root, nil, nil, "deploy", d[0], "prod", d[1], "--wait"); r.code != 0 {
			t.Fatalf("deploy %s: %+v", d[1], r)
		}
	}
	return tp
}

func (tp template) clone(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("cp", "-a", tp.dir, root).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	return root
}

// TestHandEditedAppJSON is a corpus of hand edits of app.json, each
// through the real CLI beside a healthy app environment (api/prod, with a
// deployment pending). A file that does not parse, or holds a value the
// agent cannot use, is reported by status, status --json, rollforward and
// deploy naming the file and LINE:COL (or the value), is never rewritten,
// and api/prod deploys. A version that is not on the server fails its
// deployment naming it; unknown keys are kept.
func TestHandEditedAppJSON(t *testing.T) {
	tp := newTemplate(t)
	refused := []struct {
		name, content, want string
	}{
		{"trailing comma", "{\n  \"current_version\": \"V1\",\n}\n", ":3:1: invalid character '}'"},
		{"nested trailing comma", "{\"current_version\": \"V1\", \"deployment\": {\"version\": \"V2\",}}", ":1:78: invalid character '}'"},
		{"wrong type", "{\n  \"current_version\": 12\n}", ":2:22: current_version: wrong type: got JSON number, want a string"},
		{"wrong nested type", "{\"deployment\": {\"version\": \"V2\", \"tar_bytes\": \"big\"}}", ":1:57: deployment.tar_bytes: wrong type: got JSON string, want a whole number"},
		{"wrong list type", "{\"current_version\": \"V1\", \"recent_failed_deployments\": {}}", ":1:66: recent_failed_deployments: wrong type: got JSON object, want a list [...]"},
		{"bad date", "{\"current_version\": \"V1\", \"deployment\": {\"version\": \"V2\", \"request_date\": \"yesterday\"}}", `:1:95: "yesterday" is not a date: write dates as RFC 3339`},
		{"half saved", "{\"current_version\": \"V1\", \"deployment\": {\"vers", ":1:56: unexpected end of JSON input"},
		{"empty", "", "the file is empty"},
		{"only spaces", "  \n", "the file is empty"},
		{"comment", "// deployed by hand\n{\"current_version\": \"V1\"}", ":1:1: invalid character '/'"},
		{"byte order mark", "\ufeff{\"current_version\": \"V1\"}", ":1:1: invalid character"},
		{"single quotes", "{'current_version': 'V1'}", ":1:2: invalid character '\\''"},
		{"not an object", "[\"V1\"]", ":1:1: the file must hold one JSON object {...}, not a JSON array"},
		{"bad version", "{\n\"current_version\": \"v1.2\"}", `:2:20: current_version "v1.2": invalid version ID`},
		{"bad deployment version", "{\"current_version\": \"V1\", \"deployment\": {\"version\": \"../../etc\"}}", `deployment.version "../../etc": invalid version ID`},
		{"bad state", "{\"current_version\": \"V1\", \"deployment\": {\"version\": \"V2\", \"state\": \"bogus\"}}", `deployment.state "bogus": unknown state`},
		{"bad scale", "{\"current_version\": \"V1\", \"scale\": {\"web\": -1}}", `scale.web "-1": give 0 to 64 instances`},
	}
	ok := 0
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			root := tp.clone(t)
			appJSON := filepath.Join(root, web, "app.json")
			content := strings.NewReplacer("V1", tp.v1, "V2", tp.v2).Replace(tc.content)
			if err := os.WriteFile(appJSON, []byte(content), 0o640); err != nil {
				t.Fatal(err)
			}
			want := appJSON
			if strings.HasPrefix(tc.want, ":") {
				want += tc.want
			}
			st := run(t, root, nil, nil, "status")
			if st.code != 1 || !strings.Contains(st.stderr, "1 app.json file(s) under") || !strings.Contains(st.stdout, "error:      "+want) || !strings.Contains(st.stdout, tc.want) {
				t.Fatalf("status: %+v\nwant an error %q", st, want+" ... "+tc.want)
			}
			js := run(t, root, nil, nil, "status", "--json")
			var out struct {
				Apps []struct{ App, Error string }
			}
			if err := json.Unmarshal([]byte(js.stdout), &out); err != nil || len(out.Apps) != 2 || out.Apps[1].App != "web" || !strings.Contains(out.Apps[1].Error, want) || out.Apps[0].Error != "" {
				t.Fatalf("status --json: %v %+v", err, out)
			}
			// A restart of api/prod: a deployment that must go on.
			apiJSON := filepath.Join(root, "api", "prod", "app.json")
			state.UpdateApp(apiJSON, func(a *state.App) error {
				a.Request(tp.a1, state.Now(), false)
				return nil
			})
			r := run(t, root, nil, nil, "rollforward")
			if r.code != 0 || !strings.Contains(r.stderr, "web/prod: skipped: "+want) {
				t.Fatalf("rollforward: %+v", r)
			}
			var api state.App
			if err := state.Read(apiJSON, &api); err != nil || api.CurrentVersion != tp.a1 || api.Deployment != nil || len(api.DeployedVersions) != 2 {
				t.Fatalf("api/prod was not deployed beside the broken file: %v %+v", err, api)
			}
			d := run(t, root, nil, nil, "deploy", "web", "prod", tp.v2)
			if d.code == 0 || !strings.Contains(d.stderr, want) {
				t.Fatalf("deploy over the broken file: %+v", d)
			}
			if got, _ := os.ReadFile(appJSON); string(got) != content {
				t.Fatalf("the file was rewritten: %q", got)
			}
			if live, _ := os.Readlink(filepath.Join(versionsDir(root), "current")); live != tp.v1 {
				t.Errorf("current -> %s, want %s", live, tp.v1)
			}
			ok++
		})
	}

	// Values the agent accepts: a version that is not on the server fails
	// naming it; unknown keys and a null deployment are fine.
	missing := "0123456789ab"
	accepted := []struct {
		name, content string
		live          string // V1 or V2
		failure       string // the reason recorded, "" for none
		keep          []string
	}{
		{name: "deployment of a version not here", content: `{"current_version": "V1", "deployment": {"version": "` + missing + `"}}`, live: "V1",
			failure: "version " + missing + " is not on this server"},
		{name: "current_version not here", content: `{"current_version": "` + missing + `"}`, live: "V1",
			failure: "version " + missing + " is not on this server"},
		{name: "unknown keys", content: `{"current_version": "V1", "owner": "ops team", "deployment": {"version": "V2", "ticket": 42}}`, live: "V2",
			keep: []string{`"owner": "ops team"`}},
		{name: "null deployment", content: `{"current_version": "V1", "deployment": null, "note": [1, 2]}`, live: "V1", keep: []string{`"note": [`}},
		{name: "current_version edited to another release", content: `{"current_version": "V2", "deployed_versions": [{"version": "V1"}]}`, live: "V2"},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			root := tp.clone(t)
			appJSON := filepath.Join(root, web, "app.json")
			content := strings.NewReplacer("V1", tp.v1, "V2", tp.v2).Replace(tc.content)
			os.WriteFile(appJSON, []byte(content), 0o640)
			if r := run(t, root, nil, nil, "rollforward"); r.code != 0 || strings.Contains(r.stderr, "skipped") {
				t.Fatalf("rollforward: %+v", r)
			}
			live := map[string]string{"V1": tp.v1, "V2": tp.v2}[tc.live]
			a := assertLive(t, root, live, map[string]string{"V1": "1", "V2": "2"}[tc.live])
			switch n := len(a.RecentFailedDeployments); {
			case tc.failure == "" && n != 0:
				t.Errorf("failures %+v", a.RecentFailedDeployments)
			case tc.failure != "" && (n != 1 || !strings.HasPrefix(a.RecentFailedDeployments[0].Reason, tc.failure)):
				t.Errorf("failures %+v, want %q", a.RecentFailedDeployments, tc.failure)
			}
			if tc.failure != "" {
				if st := run(t, root, nil, nil, "status"); !strings.Contains(st.stdout, "failed:     "+missing) || !strings.Contains(st.stdout, tc.failure) {
					t.Errorf("status:\n%s", st.stdout)
				}
			}
			got, _ := os.ReadFile(appJSON)
			for _, k := range tc.keep {
				if !strings.Contains(string(got), k) {
					t.Errorf("the rewrite lost %s:\n%s", k, got)
				}
			}
			ok++
		})
	}
	t.Logf("summary: hand-edited app.json: %d cases through the CLI (%d refused naming file and LINE:COL or value, file kept, other app deployed; %d accepted or failed naming the value): %d as expected",
		len(refused)+len(accepted), len(refused), len(accepted), ok)
}

// tree describes every path under root with its type, mode and size.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %v %d %v", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// cliCommand is a jeagent command line taking APP ENV.
type cliCommand struct {
	name  string
	args  func(app, env string) []string
	stdin []byte
}

// TestNamesRefusedByCLI gives every command that takes APP ENV names that
// are not app or environment names: each is refused with the name and the
// rule, and nothing under the root changes (nor beside it).
func TestNamesRefusedByCLI(t *testing.T) {
	tp := newTemplate(t)
	root := tp.clone(t)
	parent := filepath.Dir(root)
	bad := []string{"a/b", "..", ".", "../../etc", "a b", "ünïcode", "Web", "web.prod", "a\nb", "", "-x", "x-" + strings.Repeat("y", 62)}
	commands := []cliCommand{
		{"deploy", func(a, e string) []string { return []string{"deploy", a, e, tp.v1} }, nil},
		{"deploy --wait", func(a, e string) []string { return []string{"deploy", a, e, tp.v1, "--wait"} }, nil},
		{"receive", func(a, e string) []string { return []string{"receive", a, e, tp.v1} }, []byte("not a bundle")},
		{"has", func(a, e string) []string { return []string{"has", a, e, tp.v1} }, nil},
		{"rollback", func(a, e string) []string { return []string{"rollback", a, e} }, nil},
		{"config", func(a, e string) []string { return []string{"config", a, e} }, nil},
		{"config:set", func(a, e string) []string { return []string{"config:set", a, e, "KEY=value"} }, nil},
		{"config:unset", func(a, e string) []string { return []string{"config:unset", a, e, "KEY"} }, nil},
		{"ps:scale", func(a, e string) []string { return []string{"ps:scale", a, e, "web=1"} }, nil},
		{"logs", func(a, e string) []string { return []string{"logs", a, e} }, nil},
		{"status --follow", func(a, e string) []string { return []string{"status", a, e, "--follow"} }, nil},
		{"backup", func(a, e string) []string { return []string{"backup", a, e, "redis"} }, nil},
		{"restore", func(a, e string) []string { return []string{"restore", a, e, "redis"} }, nil},
		{"backups", func(a, e string) []string { return []string{"backups", a, e} }, nil},
	}
	if !full() {
		// The commands share one check of the names; all of them with
		// JECLOUD_RELIABILITY=full.
		commands = slices.DeleteFunc(commands, func(c cliCommand) bool {
			return !slices.Contains([]string{"deploy", "receive", "config:set", "logs", "status --follow", "backup"}, c.name)
		})
	}
	before, beside := tree(t, root), names(t, parent)
	cases := 0
	for _, cmd := range commands {
		for _, pos := range []string{"app", "environment"} {
			names := bad
			if pos == "app" {
				names = append(names, "sys")
			}
			for _, name := range names {
				app, env := name, "prod"
				if pos == "environment" {
					app, env = "web", name
				}
				r := run(t, root, nil, cmd.stdin, cmd.args(app, env)...)
				want := fmt.Sprintf("invalid %s name %q", pos, name)
				if r.code == 0 || !strings.Contains(r.stderr, want) && !(name == "-x" && strings.Contains(r.stderr, "flag provided but not defined: -x")) {
					t.Errorf("jeagent %s with %s %q: exit %d, stderr %q; want %q", cmd.name, pos, name, r.code, r.stderr, want)
				}
				cases++
			}
		}
	}
	// status APP ENV only filters what it lists: it must list nothing for these.
	statusCases, statusRefused := 0, 0
	for _, name := range append(bad, "sys") {
		if name == "" { // no filter
			continue
		}
		for _, args := range [][]string{{"status", name}, {"status", "web", name}, {"status", name, "--json"}} {
			r := run(t, root, nil, nil, args...)
			statusCases++
			switch {
			case r.code != 0 && (strings.Contains(r.stderr, "invalid") || strings.Contains(r.stderr, "flag provided but not defined")):
				statusRefused++
			case r.code == 3 && strings.Contains(r.stderr, "no app environment") && (strings.Contains(r.stdout, "no app environments") || strings.Contains(r.stdout, `"apps": []`)):
			default:
				t.Errorf("jeagent %q: %+v; want a refusal or nothing listed", args, r)
			}
		}
	}
	if after := tree(t, root); !slicesEqual(after, before) {
		t.Errorf("the tree under the root changed:\n%s", diff(before, after))
	}
	if after := names(t, parent); !slicesEqual(after, beside) {
		t.Errorf("beside the root: %v, was %v", after, beside)
	}
	t.Logf("summary: invalid names through the CLI: %d cases (%d commands x %d names as app or environment) refused naming the value, tree unchanged; status: %d cases, %d refused, the rest listed nothing",
		cases, len(commands), len(bad)*2+1, statusCases, statusRefused)
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func diff(before, after []string) string {
	in := map[string]bool{}
	for _, s := range before {
		in[s] = true
	}
	var b strings.Builder
	for _, s := range after {
		if !in[s] {
			fmt.Fprintf(&b, "+ %s\n", s)
		}
		delete(in, s)
	}
	for s := range in {
		fmt.Fprintf(&b, "- %s\n", s)
	}
	return b.String()
}
