package bootstrap_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/jecloud/jecloud/internal/bootstrap"
	"github.com/jecloud/jecloud/internal/ec2test"
	"github.com/jecloud/jecloud/internal/routes"
)

func TestBalancerName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,30}[a-zA-Z0-9])?$`)
	seen := map[string]string{}
	for _, tc := range []struct{ app, env string }{
		{"shop", "prod"},
		{"a", "b-c"},
		{"a-b", "c"},
		{strings.Repeat("x", 63), "prod"},
		{"shop", strings.Repeat("e", 63)},
		{strings.Repeat("x", 25), "a"}, // cut just before a hyphen
	} {
		n := bootstrap.BalancerName(tc.app, tc.env)
		if !valid.MatchString(n) || !strings.HasPrefix(n, "jc-") {
			t.Errorf("BalancerName(%q, %q) = %q: not a valid load balancer name", tc.app, tc.env, n)
		}
		if o, ok := seen[n]; ok {
			t.Errorf("BalancerName(%q, %q) = %q, as for %s", tc.app, tc.env, n, o)
		}
		seen[n] = tc.app + "/" + tc.env
	}
}

// TestBalancer: EnsureBalancer makes the load balancer, its security
// group, target group and listener once (a second run makes nothing);
// In registers a server once its health path answers and returns once it
// is healthy; Out deregisters it and returns once it is drained;
// DestroyBalancer deletes it all. Against the EC2 fake, without HAProxy.
func TestBalancer(t *testing.T) {
	fake := ec2test.New(t, nil)
	creds := credentials.NewStaticCredentialsProvider("k", "s", "")
	api := ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(fake.URL), Credentials: creds})
	lbs := elb.New(elb.Options{Region: "us-east-1", BaseEndpoint: aws.String(fake.URL), Credentials: creds})
	ctx := t.Context()
	var log bytes.Buffer
	o := bootstrap.Options{App: "shop", Env: "prod", Ports: []int32{80, 443}, Log: &log, Poll: 20 * time.Millisecond}

	if _, err := bootstrap.EnsureBalancer(ctx, api, lbs, bootstrap.Options{App: "shop", Env: "prod", Ports: []int32{443}}); err == nil || !strings.Contains(err.Error(), "add 80 to ports") {
		t.Errorf("ports without 80: %v", err)
	}
	b, err := bootstrap.EnsureBalancer(ctx, api, lbs, o)
	if err != nil {
		t.Fatal(err)
	}
	again, err := bootstrap.EnsureBalancer(ctx, api, lbs, o)
	if err != nil || again.LoadBalancerArn != b.LoadBalancerArn || again.TargetGroupArn != b.TargetGroupArn {
		t.Fatalf("second run: %+v %v, first %+v", again, err, b)
	}
	for _, a := range []string{"CreateLoadBalancer", "CreateTargetGroup", "CreateListener", "CreateSecurityGroup"} {
		if n := fake.Calls(a); n != 1 {
			t.Errorf("%s called %d times, want once", a, n)
		}
	}
	tgs, err := lbs.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: []string{b.TargetGroupArn}})
	if err != nil || aws.ToString(tgs.TargetGroups[0].HealthCheckPath) != routes.HealthPath || aws.ToInt32(tgs.TargetGroups[0].Port) != 80 {
		t.Errorf("target group: %+v %v", tgs, err)
	}
	// A short drain for the test.
	if _, err := lbs.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(b.TargetGroupArn),
		Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("1")}}}); err != nil {
		t.Fatal(err)
	}

	run, err := api.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-0debian12amd64"), InstanceType: types.InstanceTypeT3Small, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	if err := ec2.NewInstanceRunningWaiter(api, func(o *ec2.InstanceRunningWaiterOptions) {
		o.MinDelay, o.MaxDelay = 5*time.Millisecond, 50*time.Millisecond
	}).
		Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	b.Poll, b.Timeout = 20*time.Millisecond, 5*time.Second
	if err := b.Out(ctx, id, "shop-prod-1"); err != nil || fake.Calls("DeregisterTargets") != 0 {
		t.Errorf("Out of a server not registered: %v, %d deregistrations", err, fake.Calls("DeregisterTargets"))
	}
	var healthy atomic.Bool
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != routes.HealthPath || !healthy.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	}))
	defer health.Close()
	b.Timeout = 300 * time.Millisecond
	if err := b.In(ctx, id, "shop-prod-1", health.URL+routes.HealthPath); err == nil || fake.Calls("RegisterTargets") != 0 {
		t.Errorf("In while the health path says 503: %v, %d registrations", err, fake.Calls("RegisterTargets"))
	}
	healthy.Store(true)
	b.Timeout = 5 * time.Second
	if err := b.In(ctx, id, "shop-prod-1", health.URL+routes.HealthPath); err != nil {
		t.Fatal(err)
	}
	hs, err := b.Health(ctx)
	if err != nil || len(hs) != 1 || hs[0].State != "healthy" || hs[0].InstanceID != id {
		t.Errorf("health after In: %+v %v", hs, err)
	}
	start := time.Now()
	if err := b.Out(ctx, id, "shop-prod-1"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("Out returned after %s, before the 1 s drain", d)
	}
	if hs, err := b.Health(ctx); err != nil || len(hs) != 0 {
		t.Errorf("health after Out: %+v %v", hs, err)
	}

	if err := bootstrap.DestroyBalancer(ctx, api, lbs, o); err != nil {
		t.Fatal(err)
	}
	if len(fake.Balancers()) != 0 || len(fake.TargetGroups()) != 0 {
		t.Errorf("after DestroyBalancer: %+v %v", fake.Balancers(), fake.TargetGroups())
	}
	gs, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{{Name: aws.String("group-name"), Values: []string{"jecloud-shop_prod+lb"}}}})
	if err != nil || len(gs.SecurityGroups) != 0 {
		t.Errorf("the balancer's security group after DestroyBalancer: %+v %v", gs, err)
	}
	if err := bootstrap.DestroyBalancer(ctx, api, lbs, o); err != nil {
		t.Errorf("DestroyBalancer again: %v", err)
	}
	t.Logf("log:\n%s", log.String())

	// Someone else's load balancer of that name is left alone.
	if _, err := lbs.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String(bootstrap.BalancerName("shop", "prod")),
		Subnets: []string{"subnet-0ec2ec2ec2ec2ec22", "subnet-0ec2ec2ec2ec2ec23"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := bootstrap.EnsureBalancer(ctx, api, lbs, o); err == nil || !strings.Contains(err.Error(), "someone else's") {
		t.Errorf("EnsureBalancer over someone else's: %v", err)
	}
	if err := bootstrap.DestroyBalancer(ctx, api, lbs, o); err == nil || len(fake.Balancers()) != 1 {
		t.Errorf("DestroyBalancer of someone else's: %v, %d left", err, len(fake.Balancers()))
	}
}

// TestBalancerTLS: with domains, EnsureTLS requests one ACM certificate
// for them and returns its DNS validation records while it is pending
// (again: the same, no second request); once issued, it adds the HTTPS
// listener with it, once; a change of domains gets a new certificate,
// which the listener takes once issued (the old one deleted);
// DestroyBalancer then DestroyTLS delete it all.
func TestBalancerTLS(t *testing.T) {
	fake := ec2test.New(t, nil)
	creds := credentials.NewStaticCredentialsProvider("k", "s", "")
	api := ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(fake.URL), Credentials: creds})
	lbs := elb.New(elb.Options{Region: "us-east-1", BaseEndpoint: aws.String(fake.URL), Credentials: creds})
	certs := acm.New(acm.Options{Region: "us-east-1", BaseEndpoint: aws.String(fake.URL), Credentials: creds})
	ctx := t.Context()
	var log bytes.Buffer
	o := bootstrap.Options{App: "shop", Env: "prod", Ports: []int32{80, 443}, Log: &log, Poll: 20 * time.Millisecond}
	b, err := bootstrap.EnsureBalancer(ctx, api, lbs, o)
	if err != nil {
		t.Fatal(err)
	}
	domains := []string{"shop.example.com", "www.shop.example.com"}
	if recs, err := b.EnsureTLS(ctx, api, certs, o, nil); err != nil || recs != nil {
		t.Errorf("no domains: %v %v", recs, err)
	}
	recs, err := b.EnsureTLS(ctx, api, certs, o, domains)
	if err != nil || len(recs) != 2 || recs[0].Type != "CNAME" || !strings.HasSuffix(recs[0].Name, ".shop.example.com.") || !strings.HasSuffix(recs[0].Value, ".acm-validations.aws.") {
		t.Fatalf("pending: %+v %v", recs, err)
	}
	again, err := b.EnsureTLS(ctx, api, certs, o, domains)
	if err != nil || len(again) != 2 || again[0] != recs[0] || fake.Calls("RequestCertificate") != 1 {
		t.Errorf("again while pending: %+v %v, %d requests", again, err, fake.Calls("RequestCertificate"))
	}
	if n := fake.IssueCertificates(); n != 1 {
		t.Fatalf("%d certificates issued, want 1", n)
	}
	for range 2 {
		if recs, err := b.EnsureTLS(ctx, api, certs, o, domains); err != nil || recs != nil {
			t.Fatalf("issued: %+v %v", recs, err)
		}
	}
	ls, err := lbs.DescribeListeners(ctx, &elb.DescribeListenersInput{LoadBalancerArn: aws.String(b.LoadBalancerArn)})
	if err != nil || len(ls.Listeners) != 2 || fake.Calls("CreateListener") != 2 {
		t.Fatalf("listeners: %+v %v, %d made", ls, err, fake.Calls("CreateListener"))
	}
	https := ls.Listeners[1]
	if https.Protocol != elbtypes.ProtocolEnumHttps || aws.ToInt32(https.Port) != 443 || len(https.Certificates) != 1 {
		t.Errorf("HTTPS listener: %+v", https)
	}
	first := aws.ToString(https.Certificates[0].CertificateArn)
	listenerCert := func() string {
		t.Helper()
		ls, err := lbs.DescribeListeners(ctx, &elb.DescribeListenersInput{ListenerArns: []string{aws.ToString(https.ListenerArn)}})
		if err != nil || len(ls.Listeners) != 1 || len(ls.Listeners[0].Certificates) != 1 {
			t.Fatalf("HTTPS listener: %+v %v", ls, err)
		}
		return aws.ToString(ls.Listeners[0].Certificates[0].CertificateArn)
	}

	// A domain added: a certificate for the new set is requested, the
	// listener keeps the old one while ACM validates it, then takes the
	// new one, and the old one is deleted.
	domains = []string{"api.shop.example.com", "shop.example.com", "www.shop.example.com"}
	recs, err = b.EnsureTLS(ctx, api, certs, o, domains)
	if err != nil || len(recs) != 3 || fake.Calls("RequestCertificate") != 2 || listenerCert() != first {
		t.Fatalf("domain added, pending: %+v %v, %d requests, listener on %s", recs, err, fake.Calls("RequestCertificate"), listenerCert())
	}
	fake.IssueCertificates()
	if recs, err := b.EnsureTLS(ctx, api, certs, o, domains); err != nil || recs != nil {
		t.Fatalf("domain added, issued: %+v %v", recs, err)
	}
	now := fake.Certificates()
	if second := listenerCert(); second == first || len(now) != 1 || !slices.Equal(now[second], domains) {
		t.Fatalf("after the change the listener has %s, certificates %v, want only the new one for %v", second, now, domains)
	}
	for range 2 {
		if recs, err := b.EnsureTLS(ctx, api, certs, o, domains); err != nil || recs != nil {
			t.Fatalf("again: %+v %v", recs, err)
		}
	}
	if fake.Calls("ModifyListener") != 1 || fake.Calls("RequestCertificate") != 2 || fake.Calls("CreateListener") != 2 {
		t.Errorf("calls: ModifyListener %d, RequestCertificate %d, CreateListener %d; want 1, 2, 2",
			fake.Calls("ModifyListener"), fake.Calls("RequestCertificate"), fake.Calls("CreateListener"))
	}
	if err := bootstrap.DestroyBalancer(ctx, api, lbs, o); err != nil {
		t.Fatal(err)
	}
	if err := bootstrap.DestroyTLS(ctx, certs, o); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Certificates()); n != 0 {
		t.Errorf("%d certificates left after destroy", n)
	}
	t.Logf("records asked for: %+v\nlog:\n%s", recs, log.String())
}
