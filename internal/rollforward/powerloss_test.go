package rollforward

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/plan"
	"github.com/jecloud/jecloud/internal/state"
)

// position is the ":LINE:COL:" a parse error must give (or it says the file is empty).
var position = regexp.MustCompile(`:\d+:\d+: `)

func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ageFile sets a file's times to d before the lab's clock.
func (lb *lab) ageFile(path string, d time.Duration) {
	lb.t.Helper()
	at := lb.now.Add(-d)
	if err := os.Chtimes(path, at, at); err != nil {
		lb.t.Fatal(err)
	}
}

func (lb *lab) count(call string) int {
	n := 0
	for _, c := range lb.rec.calls {
		if c == call {
			n++
		}
	}
	return n
}

// TestAppJSONWriteCutAtEveryByte simulates a power cut at every byte of a
// rewrite of app.json, in the three shapes it can leave:
//   - temp: the temp file holds data[:n] beside the intact old file (the
//     agent's own writes are temp file, fsync, rename);
//   - file: app.json itself holds data[:n] (an editor that saves in place);
//   - first write: only the temp exists, no app.json yet.
//
// In every case the old state is what the agent sees (or the cut file is
// refused with PATH:LINE:COL and never overwritten), the temps are removed,
// and another app environment keeps deploying.
func TestAppJSONWriteCutAtEveryByte(t *testing.T) {
	lb := newLab(t)
	api := state.AppEnv{App: "api", Env: "prod"}
	fresh := state.AppEnv{App: "fresh", Env: "prod"}
	v1 := lb.push(web, map[string]string{"x": "1"})
	v2 := lb.push(web, map[string]string{"x": "2"})
	a1 := lb.push(api, map[string]string{"y": "1"})
	f1 := lb.push(fresh, map[string]string{"z": "1"})
	lb.request(web, v1)
	lb.request(api, a1)
	lb.run()
	path := lb.l.AppJSON(web)
	old := readBytes(t, path)
	// The write that is cut: the request of v2, as `jeagent deploy` writes it.
	next := lb.app(web)
	next.Request(v2, lb.now, false)
	data, err := state.Encode(next)
	if err != nil {
		t.Fatal(err)
	}

	// apiStillDeploys checks that api was restarted as often as asked.
	apiStillDeploys := func(n int, problems []Problem, want int) {
		t.Helper()
		if got := lb.count("deployed:" + a1); got != want {
			t.Fatalf("n=%d: api/prod restarted %d times, want %d (problems %v)\n%s", n, got, want, problems, lb.log)
		}
	}
	// Every byte is planned; a whole run with a deployment of api beside
	// (a restart: a few fsyncs) is done every stride bytes, every byte with
	// JECLOUD_RELIABILITY=full.
	stride := 16
	if os.Getenv("JECLOUD_RELIABILITY") == "full" {
		stride = 1
	}
	restarts := lb.count("deployed:" + a1)
	var tempCases, fileCases, fileRefused, fileParsed, firstCases, deploys int
	for n := 0; n <= len(data); n++ {
		redeploy := n%stride == 0 || n >= len(data)-1
		if redeploy {
			lb.request(api, a1)
			restarts++
			deploys++
		}
		// temp: the old file is intact, the temp (as old as the cut) goes.
		tmp := atomicfile.TempName(path)
		if err := os.WriteFile(tmp, data[:n], 0o640); err != nil {
			t.Fatal(err)
		}
		lb.ageFile(tmp, 2*plan.UploadGrace)
		var problems []Problem
		if redeploy {
			problems = lb.run()
		} else {
			// The plan: remove the leftover, nothing else; apply just that.
			var steps []Step
			steps, problems, err = lb.e.Plan()
			if err != nil || len(steps) != 1 || steps[0].Name != "leftovers" || !strings.Contains(steps[0].Reason, filepath.Base(tmp)) {
				t.Fatalf("n=%d: plan %v, %v", n, steps, err)
			}
			if err := steps[0].apply(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		apiStillDeploys(n, problems, restarts)
		if len(problems) != 0 {
			t.Fatalf("n=%d: temp beside the old file gave problems %v", n, problems)
		}
		if got := readBytes(t, path); !bytes.Equal(got, old) {
			t.Fatalf("n=%d: app.json changed:\n%s", n, got)
		}
		if _, err := os.Lstat(tmp); err == nil {
			t.Fatalf("n=%d: leftover %s not removed", n, filepath.Base(tmp))
		}
		if lb.live(web) != v1 {
			t.Fatalf("n=%d: live %s, want %s", n, lb.live(web), v1)
		}
		tempCases++

		// file: app.json itself cut after n bytes.
		fileCases++
		if err := os.WriteFile(path, data[:n], 0o640); err != nil {
			t.Fatal(err)
		}
		var a state.App
		if err := state.Read(path, &a); err == nil {
			// Only the whole object parses (with or without its newline).
			if n < len(data)-1 || a.Deployment == nil || a.Deployment.Version != v2 {
				t.Fatalf("n=%d: a cut file parsed as %+v", n, a)
			}
			fileParsed++
		} else {
			var problems []Problem
			if redeploy {
				lb.request(api, a1)
				restarts++
				deploys++
				problems = lb.run()
			} else {
				var steps []Step
				if steps, problems, err = lb.e.Plan(); err != nil || len(steps) != 0 {
					t.Fatalf("n=%d: plan %v, %v", n, steps, err)
				}
			}
			apiStillDeploys(n, problems, restarts)
			var pe *state.ParseError
			if len(problems) != 1 || problems[0].AppEnv != web || !errors.As(problems[0].Err, &pe) || pe.Path != path {
				t.Fatalf("n=%d: problems %v, want one ParseError of %s", n, problems, path)
			}
			if msg := problems[0].Err.Error(); !strings.HasPrefix(msg, path) || !position.MatchString(msg) && !strings.Contains(msg, "the file is empty") {
				t.Fatalf("n=%d: error %q names no file and position", n, msg)
			}
			if got := readBytes(t, path); !bytes.Equal(got, data[:n]) {
				t.Fatalf("n=%d: the cut file was overwritten with:\n%s", n, got)
			}
			fileRefused++
		}
		if err := os.WriteFile(path, old, 0o640); err != nil {
			t.Fatal(err)
		}

		// first write: no app.json yet, only the cut temp. The app
		// environment does not exist yet; nothing else is disturbed.
		firstTmp := atomicfile.TempName(lb.l.AppJSON(fresh))
		if err := os.WriteFile(firstTmp, data[:n], 0o640); err != nil {
			t.Fatal(err)
		}
		lb.ageFile(firstTmp, 2*plan.UploadGrace)
		if steps, problems, err := lb.e.Plan(); err != nil || len(problems) != 0 || len(steps) != 0 {
			t.Fatalf("n=%d: with a first write cut: steps %v problems %v err %v", n, steps, problems, err)
		}
		if n < len(data) {
			os.Remove(firstTmp) // the last one stays, for what follows
		}
		firstCases++
	}
	// The app environment whose first write was cut is deployed once it is
	// asked for again, and its leftover then goes.
	lb.request(fresh, f1)
	if problems := lb.run(); len(problems) != 0 {
		t.Fatalf("fresh/prod: %v", problems)
	}
	if a := lb.app(fresh); a.CurrentVersion != f1 {
		t.Fatalf("fresh/prod after a cut first write: %+v", a)
	}
	if temps, _ := filepath.Glob(filepath.Join(lb.l.AppDir(fresh), ".app.json.tmp-*")); len(temps) != 0 {
		t.Errorf("leftovers of the cut first write: %v", temps)
	}

	// A fresh temp may be another process's write in progress: kept for an
	// hour, then removed.
	tmp := atomicfile.TempName(path)
	os.WriteFile(tmp, data[:len(data)/2], 0o640)
	lb.ageFile(tmp, time.Minute)
	lb.request(api, a1)
	lb.run()
	if _, err := os.Lstat(tmp); err != nil {
		t.Fatalf("a temp one minute old was removed: %v", err)
	}
	lb.now = lb.now.Add(2 * plan.UploadGrace)
	lb.request(api, a1)
	lb.run()
	if _, err := os.Lstat(tmp); err == nil {
		t.Fatal("a temp two hours old was kept")
	}
	if got := readBytes(t, path); !bytes.Equal(got, old) {
		t.Fatalf("app.json changed:\n%s", got)
	}
	t.Logf("summary: app.json cut at every byte of a %d-byte write: %d cases (temp beside the old file %d, file itself cut %d: %d refused with PATH:LINE:COL or \"empty\", %d complete; first write %d); old state kept in all; another app environment deployed beside them %d times, never skipped",
		len(data), tempCases+fileCases+firstCases, tempCases, fileCases, fileRefused, fileParsed, firstCases, deploys)
}

// TestServerJSONCutAtEveryByte: a server.json cut at any byte (an editor
// that saves in place, or a hand edit gone wrong) pauses the cleanup of old
// releases, which is all it governs, and is reported naming the file; no
// deployment stops and the file is never rewritten.
func TestServerJSONCutAtEveryByte(t *testing.T) {
	lb := newLab(t)
	lb.now = time.Now().UTC().Add(30 * 24 * time.Hour).Truncate(time.Second) // releases are old enough to go
	var ids []string
	for i := 0; i < 3; i++ {
		id := lb.push(web, map[string]string{"x": string(rune('a' + i))})
		lb.request(web, id)
		lb.run()
		ids = append(ids, id)
	}
	path := lb.l.ServerJSON()
	if err := state.Write(path, &state.Server{Retention: state.Retention{KeepReleases: 10}}); err != nil {
		t.Fatal(err)
	}
	old := readBytes(t, path)
	// The cut write would keep only one release (the oldest would go).
	data, err := state.Encode(&state.Server{Retention: state.Retention{KeepReleases: 1, MinAgeDays: 1}})
	if err != nil {
		t.Fatal(err)
	}
	live := ids[2]
	stride := 8 // a whole run with a deployment every stride bytes; a plan at every byte
	if os.Getenv("JECLOUD_RELIABILITY") == "full" {
		stride = 1
	}
	var cases, refused, parsed, tempCases, deploys int
	for n := 0; n <= len(data); n++ {
		cases++
		if err := os.WriteFile(path, data[:n], 0o640); err != nil {
			t.Fatal(err)
		}
		var s state.Server
		if err := state.Read(path, &s); err == nil {
			if n < len(data)-1 || s.Retention.KeepReleases != 1 {
				t.Fatalf("n=%d: a cut file parsed as %+v", n, s)
			}
			parsed++
		} else {
			var problems []Problem
			if n%stride == 0 {
				before := lb.count("deployed:" + live)
				lb.request(web, live) // a restart: deployments go on
				problems = lb.run()
				if lb.count("deployed:"+live) != before+1 {
					t.Fatalf("n=%d: the deployment did not go on (problems %v)\n%s", n, problems, lb.log)
				}
				deploys++
			} else {
				var steps []Step
				if steps, problems, err = lb.e.Plan(); err != nil || len(steps) != 0 {
					t.Fatalf("n=%d: plan %v, %v (no cleanup under an unreadable retention)", n, steps, err)
				}
			}
			var pe *state.ParseError
			if len(problems) != 1 || problems[0].AppEnv != ServerAppEnv || !errors.As(problems[0].Err, &pe) || pe.Path != path ||
				!strings.Contains(problems[0].Err.Error(), "cleanup of old releases is paused") {
				t.Fatalf("n=%d: problems %v, want one naming %s", n, problems, path)
			}
			if msg := pe.Error(); !position.MatchString(msg) && !strings.Contains(msg, "the file is empty") {
				t.Fatalf("n=%d: error %q gives no position", n, msg)
			}
			if _, err := os.Stat(lb.l.Release(web, ids[0])); err != nil {
				t.Fatalf("n=%d: cleanup removed %s under a retention it could not read", n, ids[0])
			}
			if got := readBytes(t, path); !bytes.Equal(got, data[:n]) {
				t.Fatalf("n=%d: server.json was rewritten: %q", n, got)
			}
			refused++
		}
		// The temp of a cut write beside the intact old file changes nothing.
		if err := os.WriteFile(path, old, 0o640); err != nil {
			t.Fatal(err)
		}
		tmp := atomicfile.TempName(path)
		os.WriteFile(tmp, data[:n], 0o640)
		if steps, problems, err := lb.e.Plan(); err != nil || len(problems) != 0 || len(steps) != 0 {
			t.Fatalf("n=%d: temp beside server.json: steps %v problems %v err %v", n, steps, problems, err)
		}
		os.Remove(tmp)
		tempCases++
	}
	t.Logf("summary: server.json cut at every byte of a %d-byte write: %d cases (file itself cut %d: %d refused naming the file, cleanup paused, a deployment went on beside %d of them; %d complete; temp beside the old file %d: no effect)",
		len(data), cases+tempCases, cases, refused, deploys, parsed, tempCases)
}

// TestConfigWriteInProgressIsLeftAlone: `jeagent config:set` writes
// config.env (temp file, rename) while a roll-forward may run; a run must not
// remove that temp under it. Old ones are removed.
func TestConfigWriteInProgressIsLeftAlone(t *testing.T) {
	lb := newLab(t)
	v1 := lb.push(web, map[string]string{"x": "1"})
	lb.request(web, v1)
	lb.run()
	for _, name := range []string{"config.env", "services.env", "app.json"} {
		tmp := atomicfile.TempName(filepath.Join(lb.l.AppDir(web), name))
		os.WriteFile(tmp, []byte("half"), 0o640)
		lb.ageFile(tmp, time.Second)
		lb.request(web, v1)
		lb.run()
		if _, err := os.Lstat(tmp); err != nil {
			t.Errorf("%s: a temp one second old was removed under its writer", filepath.Base(tmp))
		}
		lb.ageFile(tmp, 2*plan.UploadGrace)
		lb.request(web, v1)
		lb.run()
		if _, err := os.Lstat(tmp); err == nil {
			t.Errorf("%s: a leftover two hours old was kept", filepath.Base(tmp))
		}
	}
}
