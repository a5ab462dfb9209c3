package fleet

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/jecloud/jecloud/internal/backup/s3test"
	"github.com/jecloud/jecloud/internal/bootstrap"
	"github.com/jecloud/jecloud/internal/ec2test"
	"github.com/jecloud/jecloud/internal/globalstate"
	"github.com/jecloud/jecloud/internal/state"
)

// enforcer is an S3 HTTP client that applies an IAM policy, as S3 would
// for a request signed with an instance role's credentials (aws:userid
// role-id:instance-id); versitygw itself knows no IAM policies.
type enforcer struct {
	policy, userid, bucket string
	denied                 *[]string
}

func (e enforcer) Do(r *http.Request) (*http.Response, error) {
	p, _ := url.PathUnescape(strings.TrimPrefix(r.URL.Path, "/"))
	bucket, key, _ := strings.Cut(p, "/")
	action, res := "", "arn:aws:s3:::"+bucket+"/"+key
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		action = "s3:GetObject"
	case http.MethodPut, http.MethodPost:
		action = "s3:PutObject"
	case http.MethodDelete:
		action = "s3:DeleteObject"
	}
	if key == "" {
		action, res = "s3:ListBucket", "arn:aws:s3:::"+bucket
	}
	if !ec2test.PolicyAllows(e.policy, map[string]string{"aws:userid": e.userid}, action, res) {
		*e.denied = append(*e.denied, action+" "+key)
		body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`
		return &http.Response{StatusCode: http.StatusForbidden, Status: "403 Forbidden", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/xml"}}, Body: io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)), Request: r}, nil
	}
	return http.DefaultClient.Do(r)
}

// TestServerWritesOnlyItsObservation: with the role's policy enforced, a
// server follows the document, takes a rollout slot and reports while
// writing nothing but its own observation object; the document (requested
// version, servers, host keys) stays as jepush wrote it, byte for byte; a
// second server finds the slot taken; and the server's own credentials
// cannot rewrite the document nor forge the other server's report.
func TestServerWritesOnlyItsObservation(t *testing.T) {
	s3s := s3test.Start(t, "127.0.0.1")
	ctx := t.Context()
	admin := &globalstate.Store{S3: s3s.Client(t), Bucket: s3s.Bucket}
	const roleID, v1 = "AROATESTROLEID", "0123456789ab"
	ae := state.AppEnv{App: "shop", Env: "prod"}
	obs := func(i string) string { return globalstate.ObservationKey("shop", "prod", roleID+":i-"+i) }
	if _, err := admin.Update(ctx, ae.App, ae.Env, func(e *globalstate.Env) error {
		e.Servers = []globalstate.Server{
			{Name: "shop-prod-1", Host: "10.0.0.1", InstanceID: "i-1", Observation: obs("1"), HostKeys: []string{"ssh-ed25519 AAAAone"}},
			{Name: "shop-prod-2", Host: "10.0.0.2", InstanceID: "i-2", Observation: obs("2"), HostKeys: []string{"ssh-ed25519 AAAAtwo"}},
		}
		e.Request(v1, "test", time.Now().UTC())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	docBytes := func() []byte {
		out, err := admin.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &s3s.Bucket, Key: aws.String(globalstate.Key("shop", "prod"))})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Body.Close()
		b, _ := io.ReadAll(out.Body)
		return b
	}
	before := docBytes()
	policy := bootstrap.RolePolicy(s3s.Bucket, "shop", "prod", nil)
	var denied []string
	server := func(i string) (*follower, string) {
		opts := s3s.Client(t).Options()
		opts.HTTPClient = enforcer{policy: policy, userid: roleID + ":i-" + i, bucket: s3s.Bucket, denied: &denied}
		c := s3.New(opts)
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "sys"), 0o755)
		return &follower{s: Settings{Bucket: s3s.Bucket, Server: "shop-prod-" + i, Envs: []string{"shop/prod"}}, root: root, s3: c, log: io.Discard,
			st: &globalstate.Store{S3: c, Bucket: s3s.Bucket}}, root
	}
	f1, root1 := server("1")
	if err := f1.sync(ctx, ae, allHere{}); err != nil {
		t.Fatalf("sync under the role's policy: %v", err)
	}
	var a state.App
	if err := state.Read(state.Layout{Root: root1}.AppJSON(ae), &a); err != nil || a.Deployment == nil || a.Deployment.Version != v1 {
		t.Fatalf("server 1 took no slot: %v, %+v", err, a.Deployment)
	}
	if err := f1.report(ctx, ae); err != nil {
		t.Fatalf("report under the role's policy: %v", err)
	}
	f2, root2 := server("2")
	if err := f2.sync(ctx, ae, allHere{}); err != nil {
		t.Fatal(err)
	}
	var a2 state.App
	state.Read(state.Layout{Root: root2}.AppJSON(ae), &a2)
	if a2.Deployment != nil {
		t.Errorf("server 2 deploys beside server 1 with max_parallel 1")
	}
	if len(denied) > 0 {
		t.Errorf("the agent asked for what its role does not allow: %q", denied)
	}
	// The attacks, with server 1's credentials.
	denied = nil
	forged := []byte(strings.Replace(string(before), "AAAAtwo", "AAAAattacker", 1))
	_, err1 := f1.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: &s3s.Bucket, Key: aws.String(globalstate.Key("shop", "prod")), Body: bytes.NewReader(forged)})
	err2 := f1.st.PutObservation(ctx, obs("2"), &globalstate.Observed{CurrentVersion: v1})
	if err1 == nil || err2 == nil || len(denied) != 2 {
		t.Errorf("server 1 rewrote the document (%v) or server 2's report (%v)", err1, err2)
	}
	if after := docBytes(); !bytes.Equal(before, after) {
		t.Errorf("the document changed:\n%s\nwas:\n%s", after, before)
	}
	e, _, _ := admin.Get(ctx, "shop", "prod")
	if err := admin.Observe(ctx, e); err != nil {
		t.Fatal(err)
	}
	if o := e.Server("shop-prod-1").Observed; o == nil || o.Deploying != v1 || o.For != v1 {
		t.Errorf("server 1's observation: %+v", o)
	}
	if o := e.Server("shop-prod-2").Observed; o == nil || o.Deploying != "" {
		t.Errorf("server 2's observation: %+v (want its claim withdrawn)", o)
	}
	t.Logf("summary: sync, slot and report under the role's policy with 0 denied requests; document unchanged; 2 of 2 forgeries denied")
}

// TestClaimsAtOnce: two servers poked at the same moment claim the one
// rollout slot (max_parallel 1) at once: never both deploy, and one does
// (a withdrawn claim tries again after a random pause).
func TestClaimsAtOnce(t *testing.T) {
	s3s := s3test.Start(t, "127.0.0.1")
	ctx := t.Context()
	admin := &globalstate.Store{S3: s3s.Client(t), Bucket: s3s.Bucket}
	const v1 = "0123456789ab"
	ae := state.AppEnv{App: "shop", Env: "prod"}
	if _, err := admin.Update(ctx, ae.App, ae.Env, func(e *globalstate.Env) error {
		e.Servers = []globalstate.Server{{Name: "shop-prod-1", Host: "10.0.0.1"}, {Name: "shop-prod-2", Host: "10.0.0.2"}}
		e.Request(v1, "test", time.Now().UTC())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 3; round++ {
		roots := make([]string, 2)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i := range 2 {
			root := t.TempDir()
			os.MkdirAll(filepath.Join(root, "sys"), 0o755)
			roots[i] = root
			c := s3s.Client(t)
			f := &follower{s: Settings{Bucket: s3s.Bucket, Server: fmt.Sprintf("shop-prod-%d", i+1), Envs: []string{"shop/prod"}}, root: root, s3: c,
				log: io.Discard, st: &globalstate.Store{S3: c, Bucket: s3s.Bucket}}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = f.sync(ctx, ae, allHere{})
			}()
		}
		close(start)
		wg.Wait()
		deploying := 0
		for i, root := range roots {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			var a state.App
			if state.Read(state.Layout{Root: root}.AppJSON(ae), &a) == nil && a.Deployment != nil {
				deploying++
			}
		}
		if deploying != 1 {
			t.Fatalf("round %d: %d servers deploy with max_parallel 1, want exactly 1", round, deploying)
		}
		// Free the slot for the next round.
		for i := range 2 {
			admin.PutObservation(ctx, globalstate.ObservationKey("shop", "prod", fmt.Sprintf("shop-prod-%d", i+1)), &globalstate.Observed{Date: time.Now().UTC()})
		}
	}
}
