package ec2test_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/jecloud/jecloud/internal/ec2test"
)

func elbClient(t *testing.T, srv *ec2test.Server) *elb.Client {
	return elb.NewFromConfig(awsConfig(t), func(o *elb.Options) { o.BaseEndpoint = aws.String(srv.URL) })
}

const subnetA, subnetB, vpc = "subnet-0ec2ec2ec2ec2ec22", "subnet-0ec2ec2ec2ec2ec23", "vpc-0ec2ec2ec2ec2ec21"

// balancer makes a load balancer, an HTTP target group checked at /health
// every 5 s, and a listener on 80.
func balancer(t *testing.T, c *elb.Client, delay string) (lbArn, tgArn string) {
	t.Helper()
	ctx := context.Background()
	lb, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("jc-shop-prod-abc123"), Subnets: []string{subnetA, subnetB},
		Tags: []elbtypes.Tag{{Key: aws.String("jecloud:app"), Value: aws.String("shop")}}})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("jc-shop-prod-abc123"), Protocol: elbtypes.ProtocolEnumHttp,
		Port: aws.Int32(80), VpcId: aws.String(vpc), HealthCheckPath: aws.String("/health"), HealthCheckIntervalSeconds: aws.Int32(5),
		HealthCheckTimeoutSeconds: aws.Int32(2), HealthyThresholdCount: aws.Int32(2), UnhealthyThresholdCount: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	lbArn, tgArn = aws.ToString(lb.LoadBalancers[0].LoadBalancerArn), aws.ToString(tg.TargetGroups[0].TargetGroupArn)
	if _, err := c.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(tgArn),
		Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String(delay)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: aws.String(lbArn), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80),
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(tgArn)}}}); err != nil {
		t.Fatal(err)
	}
	return lbArn, tgArn
}

func targetState(t *testing.T, c *elb.Client, tgArn, id string, port int32) string {
	t.Helper()
	out, err := c.DescribeTargetHealth(context.Background(), &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgArn),
		Targets: []elbtypes.TargetDescription{{Id: aws.String(id), Port: aws.Int32(port)}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(out.TargetHealthDescriptions[0].TargetHealth.State)
}

// TestELBValidation: what AWS refuses, the fake refuses with AWS's code.
func TestELBValidation(t *testing.T) {
	srv, ec := start(t, nil)
	c := elbClient(t, srv)
	ctx := context.Background()
	inst := run(t, ec, nil)
	lbArn, tgArn := balancer(t, c, "1")
	c2 := func(ctx context.Context, lbArn, tgArn, cert string) (*elb.CreateListenerOutput, error) {
		return c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: aws.String(lbArn), Protocol: elbtypes.ProtocolEnumHttps, Port: aws.Int32(443),
			Certificates:   []elbtypes.Certificate{{CertificateArn: aws.String(cert)}},
			DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(tgArn)}}})
	}
	tg := func(edit func(*elb.CreateTargetGroupInput)) error {
		in := &elb.CreateTargetGroupInput{Name: aws.String("tg-x"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80), VpcId: aws.String(vpc)}
		edit(in)
		_, err := c.CreateTargetGroup(ctx, in)
		return err
	}
	for _, tc := range []struct {
		name, code string
		call       func() error
	}{
		{"load balancer name too long", "ValidationError", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("jc-a-very-long-name-of-33-chars-x"), Subnets: []string{subnetA, subnetB}})
			return err
		}},
		{"load balancer name ends with a hyphen", "ValidationError", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("jc-"), Subnets: []string{subnetA, subnetB}})
			return err
		}},
		{"one zone", "ValidationError", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("one"), Subnets: []string{subnetA}})
			return err
		}},
		{"unknown subnet", "SubnetNotFound", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("two"), Subnets: []string{subnetA, "subnet-0nope"}})
			return err
		}},
		{"unknown security group", "InvalidSecurityGroup", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("two"), Subnets: []string{subnetA, subnetB}, SecurityGroups: []string{"sg-0nope"}})
			return err
		}},
		{"same name, other settings", "DuplicateLoadBalancerName", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("jc-shop-prod-abc123"), Subnets: []string{subnetA, subnetB}, Scheme: elbtypes.LoadBalancerSchemeEnumInternal})
			return err
		}},
		{"interval not above timeout", "ValidationError", func() error {
			return tg(func(in *elb.CreateTargetGroupInput) {
				in.HealthCheckIntervalSeconds, in.HealthCheckTimeoutSeconds = aws.Int32(5), aws.Int32(5)
			})
		}},
		{"interval below 5 s", "ValidationError", func() error {
			return tg(func(in *elb.CreateTargetGroupInput) { in.HealthCheckIntervalSeconds = aws.Int32(1) })
		}},
		{"health path without a slash", "ValidationError", func() error {
			return tg(func(in *elb.CreateTargetGroupInput) { in.HealthCheckPath = aws.String("health") })
		}},
		{"unknown VPC", "ValidationError", func() error {
			return tg(func(in *elb.CreateTargetGroupInput) { in.VpcId = aws.String("vpc-0nope") })
		}},
		{"unknown attribute", "InvalidConfigurationRequest", func() error {
			_, err := c.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(tgArn),
				Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("nope"), Value: aws.String("1")}}})
			return err
		}},
		{"deregistration delay out of range", "InvalidConfigurationRequest", func() error {
			_, err := c.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(tgArn),
				Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("4000")}}})
			return err
		}},
		{"register an unknown instance", "InvalidTarget", func() error {
			_, err := c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tgArn), Targets: []elbtypes.TargetDescription{{Id: aws.String("i-0nope")}}})
			return err
		}},
		{"deregister an instance not registered", "InvalidTarget", func() error {
			_, err := c.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(tgArn), Targets: []elbtypes.TargetDescription{{Id: inst.InstanceId}}})
			return err
		}},
		{"unknown load balancer", "LoadBalancerNotFound", func() error {
			_, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{Names: []string{"nope"}})
			return err
		}},
		{"unknown target group", "TargetGroupNotFound", func() error {
			_, err := c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{Names: []string{"nope"}})
			return err
		}},
		{"an HTTPS listener with a certificate pending validation", "UnsupportedCertificate", func() error {
			c := acm.NewFromConfig(awsConfig(t), func(o *acm.Options) { o.BaseEndpoint = aws.String(srv.URL) })
			out, err := c.RequestCertificate(ctx, &acm.RequestCertificateInput{DomainName: aws.String("shop.example.com"), ValidationMethod: acmtypes.ValidationMethodDns})
			if err != nil {
				return err
			}
			_, err = c2(ctx, lbArn, tgArn, aws.ToString(out.CertificateArn))
			return err
		}},
		{"a certificate for a bad name", "ValidationException", func() error {
			c := acm.NewFromConfig(awsConfig(t), func(o *acm.Options) { o.BaseEndpoint = aws.String(srv.URL) })
			_, err := c.RequestCertificate(ctx, &acm.RequestCertificateInput{DomainName: aws.String("shop..example.com"), ValidationMethod: acmtypes.ValidationMethodDns})
			return err
		}},
		{"a certificate validated by email", "ValidationException", func() error {
			c := acm.NewFromConfig(awsConfig(t), func(o *acm.Options) { o.BaseEndpoint = aws.String(srv.URL) })
			_, err := c.RequestCertificate(ctx, &acm.RequestCertificateInput{DomainName: aws.String("shop.example.com"), ValidationMethod: acmtypes.ValidationMethodEmail})
			return err
		}},
		{"a group in use", "ResourceInUse", func() error {
			_, err := c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(tgArn)})
			return err
		}},
		{"an HTTPS listener without a certificate", "CertificateNotFound", func() error {
			_, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: aws.String(lbArn), Protocol: elbtypes.ProtocolEnumHttps, Port: aws.Int32(443),
				DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(tgArn)}}})
			return err
		}},
	} {
		if got := code(tc.call()); got != tc.code {
			t.Errorf("%s: error code %q, want %q", tc.name, got, tc.code)
		}
	}
}

// TestELBLifecycle (no HAProxy): made twice is made once, a registered
// instance is healthy, a deregistered one drains for the delay and is
// then unused, tags are read back, and everything is deleted.
func TestELBLifecycle(t *testing.T) {
	srv, ec := start(t, nil)
	c := elbClient(t, srv)
	ctx := context.Background()
	id := aws.ToString(run(t, ec, nil).InstanceId)
	waitRunning(t, ec, id)
	lbArn, tgArn := balancer(t, c, "1")
	again, _ := balancer(t, c, "1")
	if again != lbArn || len(srv.Balancers()) != 1 || len(srv.TargetGroups()) != 1 {
		t.Fatalf("made twice: %s then %s, %d balancers, %d groups", lbArn, again, len(srv.Balancers()), len(srv.TargetGroups()))
	}
	if got := targetState(t, c, tgArn, id, 80); got != "unused" {
		t.Errorf("before registering: %s, want unused", got)
	}
	if _, err := c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tgArn), Targets: []elbtypes.TargetDescription{{Id: aws.String(id)}}}); err != nil {
		t.Fatal(err)
	}
	if got := targetState(t, c, tgArn, id, 80); got != "healthy" {
		t.Errorf("registered: %s, want healthy", got)
	}
	if _, err := c.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(tgArn), Targets: []elbtypes.TargetDescription{{Id: aws.String(id)}}}); err != nil {
		t.Fatal(err)
	}
	if got := targetState(t, c, tgArn, id, 80); got != "draining" {
		t.Errorf("deregistered: %s, want draining", got)
	}
	time.Sleep(1100 * time.Millisecond)
	if got := targetState(t, c, tgArn, id, 80); got != "unused" {
		t.Errorf("after the delay: %s, want unused", got)
	}
	tags, err := c.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: []string{lbArn}})
	if err != nil || len(tags.TagDescriptions) != 1 || len(tags.TagDescriptions[0].Tags) != 1 || aws.ToString(tags.TagDescriptions[0].Tags[0].Value) != "shop" {
		t.Errorf("tags: %+v %v", tags, err)
	}
	sn, err := ec.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	if err != nil || len(sn.Subnets) != 2 {
		t.Errorf("subnets: %+v %v", sn, err)
	}
	if _, err := c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(lbArn)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(tgArn)}); err != nil {
		t.Fatal(err)
	}
	if len(srv.Balancers()) != 0 || len(srv.TargetGroups()) != 0 {
		t.Errorf("left after deleting: %v %v", srv.Balancers(), srv.TargetGroups())
	}
}

// loopLauncher's machines are at 127.0.0.1, where the test's backends
// listen (each target registered with its own port).
type loopLauncher struct{}

func (loopLauncher) Launch(ctx context.Context, spec ec2test.LaunchSpec) (ec2test.Machine, error) {
	return loopMachine{}, nil
}

type loopMachine struct{}

func (loopMachine) PublicIP() string  { return "127.0.0.1" }
func (loopMachine) PrivateIP() string { return "127.0.0.1" }
func (loopMachine) Console() []byte   { return nil }
func (loopMachine) Terminate() error  { return nil }

// TestELBHAProxy: with a real HAProxy, traffic through the balancer's
// address reaches the registered targets; a target is initial until
// HAProxy's checks pass, unhealthy when they fail, and once deregistered
// gets no request.
func TestELBHAProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 30 s of health checks")
	}
	path, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy is not installed (scripts/setup.sh installs it): the traffic part needs it")
	}
	srv, ec := start(t, loopLauncher{})
	srv.SetHAProxy(path)
	c := elbClient(t, srv)
	ctx := context.Background()
	var sick atomic.Bool
	backend := func(name string, sickToo bool) (string, int32) {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/health" && sickToo && sick.Load() {
				http.Error(w, "draining", http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, name)
		}))
		t.Cleanup(hs.Close)
		_, p, _ := net.SplitHostPort(hs.Listener.Addr().String())
		n, _ := strconv.Atoi(p)
		return name, int32(n)
	}
	_, portA := backend("a", false)
	_, portB := backend("b", true)
	idA, idB := aws.ToString(run(t, ec, nil).InstanceId), aws.ToString(run(t, ec, nil).InstanceId)
	waitRunning(t, ec, idA)
	waitRunning(t, ec, idB)
	lbArn, tgArn := balancer(t, c, "2")
	addr := srv.Balancers()[0].Addr
	if addr == "" {
		t.Fatal("no HAProxy address")
	}
	if _, err := c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tgArn), Targets: []elbtypes.TargetDescription{
		{Id: aws.String(idA), Port: aws.Int32(portA)}, {Id: aws.String(idB), Port: aws.Int32(portB)}}}); err != nil {
		t.Fatal(err)
	}
	if got := targetState(t, c, tgArn, idA, portA); got != "initial" {
		t.Errorf("just registered: %s, want initial", got)
	}
	waitState := func(id string, port int32, want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for got := ""; got != want; got = targetState(t, c, tgArn, id, port) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s after 20 s, want %s", id, got, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	start := time.Now()
	waitState(idA, portA, "healthy")
	waitState(idB, portB, "healthy")
	t.Logf("both healthy %s after registering (checks every 5 s, 2 to pass)", time.Since(start).Round(100*time.Millisecond))
	get := func() string {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	seen := map[string]int{}
	for range 20 {
		seen[get()]++
	}
	if seen["a"] == 0 || seen["b"] == 0 || seen["a"]+seen["b"] != 20 {
		t.Errorf("20 requests through the balancer: %v, want both a and b", seen)
	}
	sick.Store(true)
	waitState(idB, portB, "unhealthy")
	sick.Store(false)
	waitState(idB, portB, "healthy")
	if _, err := c.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(tgArn), Targets: []elbtypes.TargetDescription{{Id: aws.String(idA), Port: aws.Int32(portA)}}}); err != nil {
		t.Fatal(err)
	}
	if got := targetState(t, c, tgArn, idA, portA); got != "draining" {
		t.Errorf("deregistered: %s, want draining", got)
	}
	st, err := srv.BalancerStatus("jc-shop-prod-abc123")
	if err != nil || st[idA] != "MAINT" || st[idB] != "UP" {
		t.Errorf("HAProxy's view after deregistering a: %v %v", st, err)
	}
	seen = map[string]int{}
	for range 10 {
		seen[get()]++
	}
	if seen["b"] != 10 {
		t.Errorf("10 requests with a deregistered: %v, want all to b", seen)
	}
	waitState(idA, portA, "unused")

	// HTTPS: a listener with an ACM certificate serves a stand-in for it;
	// ModifyListener gives it another.
	certs := acm.NewFromConfig(awsConfig(t), func(o *acm.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	cert := func(name string) string {
		t.Helper()
		out, err := certs.RequestCertificate(ctx, &acm.RequestCertificateInput{DomainName: aws.String(name), ValidationMethod: acmtypes.ValidationMethodDns})
		if err != nil {
			t.Fatal(err)
		}
		srv.IssueCertificates()
		return aws.ToString(out.CertificateArn)
	}
	served := func() []string {
		t.Helper()
		conn, err := tls.Dial("tcp", srv.Balancers()[0].TLSAddr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].DNSNames
	}
	l, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: aws.String(lbArn), Protocol: elbtypes.ProtocolEnumHttps, Port: aws.Int32(443),
		Certificates:   []elbtypes.Certificate{{CertificateArn: aws.String(cert("shop.example.com"))}},
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(tgArn)}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := served(); len(got) != 1 || got[0] != "shop.example.com" {
		t.Errorf("HTTPS listener serves a certificate for %v, want shop.example.com", got)
	}
	if _, err := c.ModifyListener(ctx, &elb.ModifyListenerInput{ListenerArn: l.Listeners[0].ListenerArn,
		Certificates: []elbtypes.Certificate{{CertificateArn: aws.String(cert("www.shop.example.com"))}}}); err != nil {
		t.Fatal(err)
	}
	if got := served(); len(got) != 1 || got[0] != "www.shop.example.com" {
		t.Errorf("after ModifyListener the listener serves a certificate for %v, want www.shop.example.com", got)
	}
}
