// Package fleet is the agent's side of an environment with many servers:
// at the start of each roll-forward run, Sync reads the environment's
// document in the global state on S3 (internal/globalstate) and, when it
// requests a version this server does not run, takes one of the
// environment's rollout slots, downloads the bundle jepush uploaded once,
// verifies it and requests its deployment in app.json; at the end of the
// run, Report writes what the server runs into its own observation object
// (globalstate.ObservationKey): the server never writes the document. A slot
// is held while a server deploys, so that at most max_parallel servers
// switch at the same time and the environment keeps serving. See
// docs/ec2.md.
package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jecloud/jecloud/internal/domains"
	"github.com/jecloud/jecloud/internal/globalstate"
	"github.com/jecloud/jecloud/internal/lines"
	"github.com/jecloud/jecloud/internal/placement"
	"github.com/jecloud/jecloud/internal/s3conf"
	"github.com/jecloud/jecloud/internal/state"
)

// Settings are the "global" key of sys/server.json:
//
//	{"global": {"bucket": "jecloud-state-eu-west-1-3f9c2a71d0e4", "region": "eu-west-1",
//	            "server": "shop-prod-2", "envs": ["shop/prod"]}}
type Settings struct {
	Bucket   string   `json:"bucket"`
	Region   string   `json:"region"`
	Endpoint string   `json:"endpoint"` // S3-compatible server (path-style)
	Owner    string   `json:"owner"`    // expected bucket owner (account ID)
	Server   string   `json:"server"`   // this server's name in the documents
	Envs     []string `json:"envs"`     // APP/ENV it serves
}

// ErrOff: server.json has no "global" key.
var ErrOff = errors.New("this server does not follow a global state")

// CredentialsFile holds S3 keys when the server has no instance role.
func CredentialsFile(root string) string { return filepath.Join(root, "sys", "global.env") }

// ReadSettings reads the "global" key of ROOT/sys/server.json.
func ReadSettings(root string) (Settings, error) {
	path := state.Layout{Root: root}.ServerJSON()
	var doc struct {
		Global *Settings `json:"global"`
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Settings{}, ErrOff
	}
	if err != nil {
		return Settings{}, err
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return Settings{}, fmt.Errorf("%s: key \"global\": %w", path, err)
	}
	g := doc.Global
	if g == nil {
		return Settings{}, ErrOff
	}
	if g.Bucket == "" || g.Server == "" || len(g.Envs) == 0 {
		return Settings{}, fmt.Errorf("%s: \"global\" needs bucket, server (this server's name) and envs ([\"APP/ENV\"])", path)
	}
	for _, e := range g.Envs {
		if _, err := appEnv(e); err != nil {
			return Settings{}, fmt.Errorf("%s: \"global\": envs: %w", path, err)
		}
	}
	if g.Region == "" {
		g.Region = "us-east-1"
	}
	return *g, nil
}

func appEnv(s string) (state.AppEnv, error) {
	app, env, ok := strings.Cut(s, "/")
	ae := state.AppEnv{App: app, Env: env}
	if !ok {
		return ae, fmt.Errorf("%q: want APP/ENV", s)
	}
	return ae, ae.Check()
}

// Versions is what Sync needs of this server's versions (internal/versions'
// Store).
type Versions interface {
	// Has reports whether the version's bundle or release is here.
	Has(ae state.AppEnv, id string) bool
	// Receive stores a bundle as `jeagent receive` does (verified, or
	// nothing) and returns the bytes read.
	Receive(ae state.AppEnv, id string, r io.Reader) (int64, error)
}

// BundleKey is where jepush uploads a version's bundle in the state bucket.
func BundleKey(app, id string) string { return "bundles/" + app + "/" + id + ".tar.zst" }

// staleClaim: a slot taken longer ago than this by a server that never
// reported back (it died) is free again.
const staleClaim = 30 * time.Minute

type follower struct {
	s    Settings
	root string
	st   *globalstate.Store
	s3   *s3.Client
	log  io.Writer
}

func open(ctx context.Context, root string, log io.Writer) (*follower, error) {
	s, err := ReadSettings(root)
	if err != nil {
		return nil, err
	}
	c, err := s3conf.Client(ctx, s.Region, s.Endpoint, CredentialsFile(root))
	if err != nil {
		return nil, err
	}
	return &follower{s: s, root: root, s3: c, log: log, st: &globalstate.Store{S3: c, Bucket: s.Bucket, Owner: s.Owner}}, nil
}

// Follower is this server's link to the global state, opened once per
// roll-forward run for its Sync and its Report.
type Follower struct{ f *follower }

// Open reads the "global" settings of root and makes the S3 client; it
// returns ErrOff when the server follows no global state.
func Open(ctx context.Context, root string, log io.Writer) (*Follower, error) {
	f, err := open(ctx, root, log)
	if err != nil {
		return nil, err
	}
	return &Follower{f}, nil
}

// Sync brings each followed environment's requested version to app.json,
// when a rollout slot is free. Errors of one environment do not stop the
// others; they are returned together.
func (fo *Follower) Sync(ctx context.Context, versions Versions) error {
	f := fo.f
	var errs []error
	for _, e := range f.s.Envs {
		ae, _ := appEnv(e)
		if err := f.sync(ctx, ae, versions); err != nil {
			errs = append(errs, fmt.Errorf("%s: global state: %w", ae, err))
		}
	}
	return errors.Join(errs...)
}

var errNoSlot = errors.New("no rollout slot free")

func (f *follower) sync(ctx context.Context, ae state.AppEnv, versions Versions) error {
	doc, _, err := f.st.Get(ctx, ae.App, ae.Env)
	if err != nil {
		return err
	}
	if doc.Requested == nil || doc.Server(f.s.Server) == nil {
		return nil
	}
	want := doc.Requested.Version
	appJSON := state.Layout{Root: f.root}.AppJSON(ae)
	var a state.App
	if err := state.Read(appJSON, &a); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := f.place(ae, appJSON, doc, &a); err != nil {
		return err
	}
	f.route(ae, doc)
	switch {
	case a.Deployment != nil && a.Deployment.Version == want:
		return nil // on its way
	case a.Deployment == nil && a.CurrentVersion == want:
		return nil // live
	case a.Failed(want):
		return nil // Report says why; a new request (another version) moves on
	}
	now := time.Now().UTC().Truncate(time.Second)
	err = f.claim(ctx, doc, &a, want, now)
	if errors.Is(err, errNoSlot) {
		fmt.Fprintf(f.log, "%s: %s is requested; waiting for a rollout slot (max_parallel servers switch at a time)\n", ae, want)
		return nil
	}
	if err != nil {
		return err
	}
	if !versions.Has(ae, want) {
		out, err := f.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &f.s.Bucket, Key: aws.String(BundleKey(ae.App, want)), ExpectedBucketOwner: f.st.ExpectedOwner()})
		if err != nil {
			return f.release(ctx, doc, &a, fmt.Errorf("downloading s3://%s/%s: %w", f.s.Bucket, BundleKey(ae.App, want), err))
		}
		_, err = versions.Receive(ae, want, out.Body)
		out.Body.Close()
		if err != nil {
			return f.release(ctx, doc, &a, err)
		}
		fmt.Fprintf(f.log, "%s: downloaded and verified %s from s3://%s/%s\n", ae, want, f.s.Bucket, BundleKey(ae.App, want))
	}
	if _, err := state.UpdateApp(appJSON, func(a *state.App) error {
		a.Request(want, now, false)
		a.Deployment.By = strings.TrimSpace(doc.Requested.By + " (global state)")
		return nil
	}); err != nil {
		return f.release(ctx, doc, &a, err)
	}
	fmt.Fprintf(f.log, "%s: deploying %s, as the global state requests\n", ae, want)
	return nil
}

// place records this server's role and the roles with ready servers (from
// the document) in app.json, when they changed; the live version is then
// restarted, so that the process types placed here start and the others
// stop (a new version requested applies them anyway).
func (f *follower) place(ae state.AppEnv, appJSON string, doc *globalstate.Env, a *state.App) error {
	me := doc.Server(f.s.Server)
	p := &placement.Server{Role: me.RoleOrWeb(), Roles: doc.ReadyRoles()}
	if placement.Same(a.Placement, p) {
		return nil
	}
	now := time.Now().UTC().Truncate(time.Second)
	restart := false
	na, err := state.UpdateApp(appJSON, func(x *state.App) error {
		x.Placement = p
		if x.Deployment == nil && x.CurrentVersion != "" && x.CurrentVersion == doc.Requested.Version {
			x.Request(x.CurrentVersion, now, false)
			restart = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	*a = *na
	fmt.Fprintf(f.log, "%s: this is a %s server (roles with servers: %v), as the global state says\n", ae, p.Role, p.Roles)
	if restart {
		fmt.Fprintf(f.log, "%s: restarting %s with the process types placed here\n", ae, a.CurrentVersion)
	}
	return nil
}

// route brings the document's front-door settings to app.json: each of
// its domains that app.json lacks is added (a server that was down when
// jepush added it, or a new one), and maintenance is set when the document
// sets it; the roll-forward then loads them into the front door. A host
// this server cannot take (invalid, or held by another app environment
// here) is left out and logged: nothing else waits on it.
func (f *follower) route(ae state.AppEnv, doc *globalstate.Env) {
	r := doc.Routing
	if r == nil {
		return
	}
	l := state.Layout{Root: f.root}
	var a state.App
	if err := state.Read(l.AppJSON(ae), &a); err != nil && !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(f.log, "%s: global state routing: %v\n", ae, err)
		return
	}
	for _, h := range r.Domains {
		if slices.Contains(a.Domains, h) {
			continue
		}
		if _, err := domains.Add(l, ae, []string{h}); err != nil {
			fmt.Fprintf(f.log, "%s: the global state routes %s here, but: %v\n", ae, lines.Printable(h), err)
			continue
		}
		fmt.Fprintf(f.log, "%s: domain %s added, as the global state says\n", ae, h)
	}
	if m := r.Maintenance; m != nil {
		changed, err := domains.SetMaintenance(l, ae, *m)
		switch {
		case err != nil:
			fmt.Fprintf(f.log, "%s: global state routing: %v\n", ae, err)
		case changed:
			fmt.Fprintf(f.log, "%s: maintenance %v, as the global state says\n", ae, *m)
		}
	}
}

// claim takes a rollout slot for version want. A server writes only its
// own observation object (its role allows nothing else), so the slot is
// taken without a shared compare-and-swap: the server first writes its
// claim (deploying want), then reads every other server's observation;
// if max_parallel others are deploying (claims older than staleClaim
// aside), it withdraws its claim and waits for the next run. Safe: of
// any max_parallel+1 claims, the last one written is written before its
// writer reads, and S3 reads see every write before them, so that writer
// sees them all and withdraws.
func (f *follower) claim(ctx context.Context, doc *globalstate.Env, a *state.App, want string, now time.Time) error {
	me := doc.Server(f.s.Server)
	key := doc.ObservationOf(me)
	prev, err := f.own(ctx, doc)
	if err != nil {
		return err
	}
	o := globalstate.Observed{CurrentVersion: a.CurrentVersion, Deploying: want, For: want, Date: now}
	if prev != nil {
		o.Extra = prev.Extra
	}
	back := globalstate.Observed{CurrentVersion: a.CurrentVersion, For: want, Date: now, Extra: o.Extra}
	if prev != nil {
		back.Error = prev.Error
	}
	// Servers poked at once claim at once, see each other and all withdraw:
	// a withdrawn claim tries again after a random pause (claimTries in
	// all), so that one of them goes first. Each try is the safe protocol
	// above; only liveness depends on the pauses.
	for try := 1; ; try++ {
		if err := f.st.PutObservation(ctx, key, &o); err != nil {
			return err
		}
		if err := f.st.Observe(ctx, doc); err != nil {
			return err
		}
		busy := 0
		for _, s := range doc.Servers {
			if o := s.Observed; s.Name != f.s.Server && o != nil && o.Deploying != "" && now.Sub(o.Date) < staleClaim {
				busy++
			}
		}
		if busy < max(1, doc.MaxParallel) {
			return nil
		}
		if err := f.st.PutObservation(ctx, key, &back); err != nil {
			return err
		}
		if try == claimTries {
			return errNoSlot
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(claimPause/2 + rand.N(claimPause)):
		}
	}
}

// claimTries and claimPause bound a contended claim: up to 3 tries, a
// random 0.5 to 1.5 pause units apart.
var (
	claimTries = 3
	claimPause = time.Second
)

// own returns what this server last reported: its observation object, or
// what an older agent wrote into the document.
func (f *follower) own(ctx context.Context, doc *globalstate.Env) (*globalstate.Observed, error) {
	me := doc.Server(f.s.Server)
	o, err := f.st.GetObservation(ctx, doc.ObservationOf(me))
	if err != nil || o != nil {
		return o, err
	}
	return me.Observed, nil
}

// release gives the slot back after a failure before the deployment began.
func (f *follower) release(ctx context.Context, doc *globalstate.Env, a *state.App, cause error) error {
	o := globalstate.Observed{CurrentVersion: a.CurrentVersion, Error: cause.Error(), For: doc.Requested.Version,
		Date: time.Now().UTC().Truncate(time.Second)}
	return errors.Join(cause, f.st.PutObservation(ctx, doc.ObservationOf(doc.Server(f.s.Server)), &o))
}

// Report writes what each followed environment runs here into its
// document, when that changed: the live version, the deployment under way
// (which holds the slot), and why the requested version failed.
func (fo *Follower) Report(ctx context.Context) error {
	f := fo.f
	var errs []error
	for _, e := range f.s.Envs {
		ae, _ := appEnv(e)
		if err := f.report(ctx, ae); err != nil {
			errs = append(errs, fmt.Errorf("%s: global state: %w", ae, err))
		}
	}
	return errors.Join(errs...)
}

func (f *follower) report(ctx context.Context, ae state.AppEnv) error {
	var a state.App
	if err := state.Read(state.Layout{Root: f.root}.AppJSON(ae), &a); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	doc, _, err := f.st.Get(ctx, ae.App, ae.Env)
	if err != nil {
		return err
	}
	me := doc.Server(f.s.Server)
	if me == nil {
		return nil
	}
	prev, err := f.own(ctx, doc)
	if err != nil {
		return err
	}
	o := globalstate.Observed{CurrentVersion: a.CurrentVersion}
	if a.Deployment != nil {
		o.Deploying = a.Deployment.Version
	}
	if r := doc.Requested; r != nil {
		o.For = r.Version
		// An error Sync recorded (a download that failed) stands until the
		// requested version runs or deploys here.
		if prev != nil && a.Deployment == nil && a.CurrentVersion != r.Version && (prev.For == "" || prev.For == r.Version) {
			o.Error = prev.Error
		}
		if a.CurrentVersion != r.Version && a.Failed(r.Version) {
			for i := len(a.RecentFailedDeployments) - 1; i >= 0; i-- {
				if fd := a.RecentFailedDeployments[i]; fd.Version == r.Version {
					o.Error = fd.Reason
					break
				}
			}
		}
	}
	if p := prev; p != nil && p.CurrentVersion == o.CurrentVersion && p.Deploying == o.Deploying && p.Error == o.Error && p.For == o.For {
		return nil // nothing new: no write
	}
	o.Date = time.Now().UTC().Truncate(time.Second)
	if prev != nil {
		o.Extra = prev.Extra
	}
	return f.st.PutObservation(ctx, doc.ObservationOf(me), &o)
}

// Follow makes this server follow app environment env ("APP/ENV") in the
// global state described by s (bucket, region, owner, endpoint, server):
// it sets the "global" key of sys/server.json, keeping the other keys and
// the environments it already follows. It reports whether it changed.
func Follow(root string, s Settings, env string) (bool, error) {
	if _, err := appEnv(env); err != nil {
		return false, err
	}
	if s.Bucket == "" || s.Server == "" {
		return false, errors.New("follow: bucket and server are required")
	}
	path := state.Layout{Root: root}.ServerJSON()
	var srv state.Server
	if err := state.Read(path, &srv); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	// The same state and server name: keep the environments it follows.
	if old, err := ReadSettings(root); err == nil && old.Bucket == s.Bucket && old.Server == s.Server {
		s.Envs = old.Envs
		if slices.Contains(old.Envs, env) && old.Region == s.Region && old.Endpoint == s.Endpoint && old.Owner == s.Owner {
			return false, nil
		}
	}
	if !slices.Contains(s.Envs, env) {
		s.Envs = append(s.Envs, env)
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return false, err
	}
	if srv.Extra == nil {
		srv.Extra = state.Extra{}
	}
	srv.Extra["global"] = raw
	return true, state.Write(path, &srv)
}
