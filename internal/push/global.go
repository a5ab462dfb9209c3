package push

import (
	"context"
	"errors"
	"fmt"
	"github.com/jecloud/jecloud/internal/appspec"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/jecloud/jecloud/internal/bytecount"
	"github.com/jecloud/jecloud/internal/fleet"
	"github.com/jecloud/jecloud/internal/globalstate"
	"github.com/jecloud/jecloud/internal/lines"
	"github.com/jecloud/jecloud/internal/progress"
	"github.com/jecloud/jecloud/internal/remote"
)

// BundleStore is what a push through the global state needs of S3.
type BundleStore interface {
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Global sends a push through the global state: the bundle goes to S3
// once, the version is requested in the environment's document, and the
// servers (which follow it: internal/fleet) fetch and deploy it, at most
// MaxParallel at a time, while jepush pokes them and shows their progress.
type Global struct {
	Store   *globalstate.Store
	Bundles BundleStore
	// Servers are the environment's servers, in the order of Client.Targets.
	Servers     []globalstate.Server
	MaxParallel int    // 0 leaves the document's setting
	By          string // who asks, for the history
	Poll        time.Duration
	// Region of the bucket, and its endpoint as the servers reach it ("":
	// AWS's), for `jeagent follow`.
	Region, ServerEndpoint string
}

// pushGlobal is Push for a Client with Global set.
func (c *Client) pushGlobal(ctx context.Context, dir string, o Options) error {
	g := c.Global
	if g.Poll <= 0 {
		g.Poll = 2 * time.Second
	}
	id, err := c.hash(ctx, dir)
	if err != nil {
		return err
	}
	if o.Requested != nil { // (the request goes into the document below, after the upload)
		if err := o.Requested(ctx, id); err != nil {
			return err
		}
	}
	c.sayPlacement()
	key := fleet.BundleKey(c.App, id)
	bucket := g.Store.Bucket
	_, err = g.Bundles.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key, ExpectedBucketOwner: g.Store.ExpectedOwner()})
	switch {
	case err == nil:
		c.say("s3://%s/%s is there already: nothing to upload", bucket, key)
	case globalstate.NotFound(err):
		b := &lazyBundle{c: c, dir: dir, id: id}
		defer b.remove()
		f, size, err := b.get(ctx)
		if err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		bar := progress.Start(c.Stderr, c.Interactive, "uploading to s3://"+bucket, size)
		if _, err := g.Bundles.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: &seekBar{f: f, bar: bar},
			ContentLength: aws.Int64(size), ExpectedBucketOwner: g.Store.ExpectedOwner()}); err != nil {
			bar.Fail()
			return fmt.Errorf("uploading the bundle to s3://%s/%s: %w", bucket, key, err)
		}
		bar.Done(fmt.Sprintf("%s, version %s at %s", bytecount.Format(size), id, key))
	default:
		return fmt.Errorf("s3://%s/%s: %w", bucket, key, err)
	}
	if err := c.followAll(ctx); err != nil {
		return err
	}
	if _, err := g.Store.Update(ctx, c.App, c.Env, func(e *globalstate.Env) error {
		e.Request(id, g.By, time.Now().UTC().Truncate(time.Second))
		for i := range e.Servers { // a new request: old failures are history
			if o := e.Servers[i].Observed; o != nil {
				o.Error = ""
			}
		}
		if g.MaxParallel > 0 {
			e.MaxParallel = g.MaxParallel
		}
		return nil
	}); err != nil {
		return err
	}
	c.say("requested %s in %s", id, g.Store.URL(c.App, c.Env))
	if err := c.follow(ctx, id, dir, o); err != nil {
		return err
	}
	c.sayServed(ctx)
	return nil
}

// follow pokes the servers that have not taken the version yet and waits
// until every one runs it, or one failed it; dir is the bundle's (what
// it runs: appspec.Outcome).
func (c *Client) follow(ctx context.Context, id, dir string, o Options) error {
	g := c.Global
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	said := map[string]string{}
	var lastPoke time.Time
	if c.placing() {
		// Servers already running the version may have to restart for a
		// new placement (a role's servers came or went): poke them all once.
		c.poke(ctx, c.Targets)
		lastPoke = time.Now()
	}
	for {
		e, _, err := g.Store.Get(ctx, c.App, c.Env)
		if err != nil {
			return err
		}
		if err := g.Store.Observe(ctx, e); err != nil {
			return err
		}
		var live, failed, waiting []string
		var toPoke []remote.Target
		for i, s := range g.Servers {
			cur := e.Server(s.Name)
			if cur == nil {
				continue // removed meanwhile
			}
			st, line := serverState(cur.Observed, id)
			line = lines.Printable(line) // servers write their observations
			if said[s.Name] != line {
				c.say("%s: %s", s.Name, line)
				said[s.Name] = line
			}
			switch st {
			case "live":
				live = append(live, s.Name)
			case "failed":
				failed = append(failed, s.Name+": "+lines.Printable(cur.Observed.Error))
			case "waiting":
				waiting = append(waiting, s.Name)
				if i < len(c.Targets) {
					toPoke = append(toPoke, c.Targets[i])
				}
			default:
				waiting = append(waiting, s.Name)
			}
		}
		if len(failed) > 0 {
			sort.Strings(failed)
			return &pushError{msg: fmt.Sprintf("deploy of %s failed on %s\nlive on: %s", id, strings.Join(failed, "; "), orNone(live))}
		}
		if len(waiting) == 0 {
			c.say("%s", c.style("ok", fmt.Sprintf("%s %s: version %s %s", c.App, c.Env, id, appspec.Outcome(dir, " on "+strings.Join(live, ", ")))))
			return nil
		}
		// Servers that have not taken it yet are poked now and then (they
		// would see it on their timer within a minute anyway).
		if time.Since(lastPoke) > 5*g.Poll {
			c.poke(ctx, toPoke)
			lastPoke = time.Now()
		}
		if time.Now().After(deadline) {
			return &pushError{msg: fmt.Sprintf("stopped waiting after %s: %s not done yet (the servers go on; `jepush servers %s` shows them)", timeout, strings.Join(waiting, ", "), c.Env)}
		}
		select {
		case <-ctx.Done():
			return &pushError{msg: fmt.Sprintf("%v: stopped watching; the servers go on with %s", ErrInterrupted, id), err: ErrInterrupted}
		case <-time.After(g.Poll):
		}
	}
}

// serverState sums up what a server reported about version id.
func serverState(o *globalstate.Observed, id string) (state, line string) {
	switch {
	case o == nil:
		return "waiting", "no report yet"
	case o.CurrentVersion == id && o.Deploying == "":
		return "live", id + " is live"
	case o.Deploying == id:
		return "deploying", "deploying " + id
	case o.Error != "" && o.Deploying == "" && (o.For == "" || o.For == id):
		return "failed", "failed: " + o.Error
	case o.Deploying != "":
		return "busy", "busy with " + o.Deploying
	}
	return "waiting", "waiting for a rollout slot (live: " + orNone([]string{o.CurrentVersion}) + ")"
}

// followAll makes every server follow the environment's document (`jeagent
// follow`, which changes nothing when it already does).
func (c *Client) followAll(ctx context.Context) error {
	g := c.Global
	errs := make([]error, len(g.Servers))
	var wg sync.WaitGroup
	for i, s := range g.Servers {
		if i >= len(c.Targets) {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := c.Targets[i]
			r, err := c.open(ctx, t)
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", t.Name(), err)
				return
			}
			defer r.Close()
			argv := []string{"follow", c.App, c.Env, "--bucket", g.Store.Bucket, "--server", s.Name, "--region", g.Region}
			if g.Store.Owner != "" {
				argv = append(argv, "--owner", g.Store.Owner)
			}
			if g.ServerEndpoint != "" {
				argv = append(argv, "--endpoint", g.ServerEndpoint)
			}
			var out strings.Builder
			if err := r.Run(ctx, argv, nil, &out, &out); err != nil {
				errs[i] = fmt.Errorf("%s: jeagent follow: %w: %s", t.Name(), err, strings.TrimSpace(out.String()))
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// poke asks servers to read the global state now (`jeagent sync`), in parallel.
func (c *Client) poke(ctx context.Context, ts []remote.Target) {
	var wg sync.WaitGroup
	for _, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.open(ctx, t)
			if err != nil {
				c.say("%s: %v", t.Name(), err)
				return
			}
			defer r.Close()
			if err := r.Run(ctx, []string{"sync"}, nil, io.Discard, io.Discard); err != nil && !errors.Is(err, context.Canceled) {
				c.say("%s: jeagent sync: %v", t.Name(), err)
			}
		}()
	}
	wg.Wait()
}

func orNone(s []string) string {
	if len(s) == 0 || len(s) == 1 && s[0] == "" {
		return "none"
	}
	return strings.Join(s, ", ")
}

// seekBar is the bundle file as the S3 upload reads it, drawing its
// progress. The SDK may read it twice (the payload hash, then the body):
// a seek back starts the bar over.
type seekBar struct {
	f   *os.File
	bar *progress.Bar
	n   int64
}

func (s *seekBar) Read(p []byte) (int, error) {
	n, err := s.f.Read(p)
	s.n += int64(n)
	s.bar.Set(0, s.n)
	return n, err
}

func (s *seekBar) Seek(off int64, whence int) (int64, error) {
	n, err := s.f.Seek(off, whence)
	s.n = n
	s.bar.Set(0, n)
	return n, err
}
