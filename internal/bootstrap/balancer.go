package bootstrap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/jecloud/jecloud/internal/routes"
)

// The load balancer of an environment with two web servers or more
// (issue #22, docs/ec2.md): an application load balancer whose HTTP
// listener (port 80) forwards to a target group of the web servers'
// front doors (HTTP:80), checked at routes.HealthPath. jepush makes it on
// the first push with two web servers, takes each server out of its
// rotation while the server switches (Balancer.Out, Balancer.In), and
// `jepush destroy` deletes it.

// ELB is what the load balancer needs of an ELBv2 client
// (*elasticloadbalancingv2.Client has it).
type ELB interface {
	CreateLoadBalancer(context.Context, *elb.CreateLoadBalancerInput, ...func(*elb.Options)) (*elb.CreateLoadBalancerOutput, error)
	DescribeLoadBalancers(context.Context, *elb.DescribeLoadBalancersInput, ...func(*elb.Options)) (*elb.DescribeLoadBalancersOutput, error)
	DeleteLoadBalancer(context.Context, *elb.DeleteLoadBalancerInput, ...func(*elb.Options)) (*elb.DeleteLoadBalancerOutput, error)
	CreateTargetGroup(context.Context, *elb.CreateTargetGroupInput, ...func(*elb.Options)) (*elb.CreateTargetGroupOutput, error)
	DescribeTargetGroups(context.Context, *elb.DescribeTargetGroupsInput, ...func(*elb.Options)) (*elb.DescribeTargetGroupsOutput, error)
	DeleteTargetGroup(context.Context, *elb.DeleteTargetGroupInput, ...func(*elb.Options)) (*elb.DeleteTargetGroupOutput, error)
	ModifyTargetGroupAttributes(context.Context, *elb.ModifyTargetGroupAttributesInput, ...func(*elb.Options)) (*elb.ModifyTargetGroupAttributesOutput, error)
	CreateListener(context.Context, *elb.CreateListenerInput, ...func(*elb.Options)) (*elb.CreateListenerOutput, error)
	DescribeListeners(context.Context, *elb.DescribeListenersInput, ...func(*elb.Options)) (*elb.DescribeListenersOutput, error)
	DeleteListener(context.Context, *elb.DeleteListenerInput, ...func(*elb.Options)) (*elb.DeleteListenerOutput, error)
	ModifyListener(context.Context, *elb.ModifyListenerInput, ...func(*elb.Options)) (*elb.ModifyListenerOutput, error)
	RegisterTargets(context.Context, *elb.RegisterTargetsInput, ...func(*elb.Options)) (*elb.RegisterTargetsOutput, error)
	DeregisterTargets(context.Context, *elb.DeregisterTargetsInput, ...func(*elb.Options)) (*elb.DeregisterTargetsOutput, error)
	DescribeTargetHealth(context.Context, *elb.DescribeTargetHealthInput, ...func(*elb.Options)) (*elb.DescribeTargetHealthOutput, error)
	DescribeTags(context.Context, *elb.DescribeTagsInput, ...func(*elb.Options)) (*elb.DescribeTagsOutput, error)
}

// BalancerEC2 is what the load balancer needs of an EC2 client: its
// security group, and the default VPC's subnets.
type BalancerEC2 interface {
	EC2
	DescribeSubnets(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
}

// The target group's health check and drain: a server is in rotation
// after 2 checks 5 s apart that pass (the shortest AWS allows), out after
// 2 that fail; a deregistered server gets no new request at once, and
// those under way have DeregistrationDelay to finish.
const (
	checkInterval       = 5
	checkTimeout        = 4
	checkThreshold      = 2
	DeregistrationDelay = 10 * time.Second
)

// BalancerName names app/env's load balancer and target group: jc-, as
// much of APP-ENV as fits, and 6 hex digits of a hash of app/env (names
// have at most 32 characters; the hash keeps (a, b-c) and (a-b, c) apart).
func BalancerName(app, env string) string {
	h := sha256.Sum256([]byte(app + "/" + env))
	suffix := "-" + hex.EncodeToString(h[:3])
	base := "jc-" + app + "-" + env
	if n := 32 - len(suffix); len(base) > n {
		base = strings.TrimRight(base[:n], "-")
	}
	return base + suffix
}

// balancerGroupName is the load balancer's security group: HTTP from
// everywhere. '+' is in no role's name, so no role's group has it.
func balancerGroupName(app, env string) string { return "jecloud-" + app + "_" + env + "+lb" }

// Balancer is an environment's load balancer.
type Balancer struct {
	Name, DNSName, LoadBalancerArn, TargetGroupArn string

	elb ELB
	log io.Writer
	// Poll is how often target health is read (default 1 s); Timeout
	// bounds each wait (default 5 min).
	Poll, Timeout time.Duration
	// HTTP checks a server's health path before it is registered again.
	HTTP *http.Client
}

func (b *Balancer) defaults() {
	if b.Poll <= 0 {
		b.Poll = time.Second
	}
	if b.Timeout <= 0 {
		b.Timeout = 5 * time.Minute
	}
	if b.HTTP == nil {
		b.HTTP = &http.Client{Timeout: 5 * time.Second}
	}
	if b.log == nil {
		b.log = io.Discard
	}
}

func elbTags(app, env string) []elbtypes.Tag {
	return []elbtypes.Tag{{Key: aws.String(TagApp), Value: aws.String(app)}, {Key: aws.String(TagEnv), Value: aws.String(env)}}
}

// FindBalancer returns app/env's load balancer, or nil if it has none. One
// of that name not tagged for app/env is someone else's: an error.
func FindBalancer(ctx context.Context, api ELB, app, env string, log io.Writer) (*Balancer, error) {
	name := BalancerName(app, env)
	out, err := api.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{Names: []string{name}})
	if isCode(err, "LoadBalancerNotFound") {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load balancer %s: %w", name, err)
	}
	if len(out.LoadBalancers) != 1 {
		return nil, fmt.Errorf("load balancer %s: %d found", name, len(out.LoadBalancers))
	}
	lb := out.LoadBalancers[0]
	if err := checkTagged(ctx, api, aws.ToString(lb.LoadBalancerArn), "load balancer "+name, app, env); err != nil {
		return nil, err
	}
	b := &Balancer{Name: name, DNSName: aws.ToString(lb.DNSName), LoadBalancerArn: aws.ToString(lb.LoadBalancerArn), elb: api, log: log}
	tgs, err := api.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{Names: []string{name}})
	switch {
	case isCode(err, "TargetGroupNotFound"):
	case err != nil:
		return nil, fmt.Errorf("target group %s: %w", name, err)
	case len(tgs.TargetGroups) == 1:
		b.TargetGroupArn = aws.ToString(tgs.TargetGroups[0].TargetGroupArn)
	}
	b.defaults()
	return b, nil
}

// checkTagged refuses a resource not tagged for app/env.
func checkTagged(ctx context.Context, api ELB, arn, what, app, env string) error {
	out, err := api.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: []string{arn}})
	if err != nil {
		return fmt.Errorf("tags of %s: %w", what, err)
	}
	tags := map[string]string{}
	for _, d := range out.TagDescriptions {
		for _, t := range d.Tags {
			tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	if tags[TagApp] != app || tags[TagEnv] != env {
		return fmt.Errorf("%s already exists and is not tagged %s=%s, %s=%s: it is someone else's (rename or delete it)", what, TagApp, app, TagEnv, env)
	}
	return nil
}

// EnsureBalancer makes app/env's load balancer, its security group, target
// group and listener, whichever are missing (each step is idempotent: a
// run cut short is finished by the next), and returns it. The web
// servers' own group must let HTTP (80) in (ports in jecloud.toml), since
// the balancer reaches their front doors there.
func EnsureBalancer(ctx context.Context, api BalancerEC2, lbs ELB, o Options) (*Balancer, error) {
	o.defaults()
	if len(o.Ports) > 0 && !slices.Contains(o.Ports, 80) {
		return nil, fmt.Errorf("%s/%s has two web servers or more, so a load balancer in front, which reaches them on port 80: add 80 to ports in [env.%s] of jecloud.toml (now %v)", o.App, o.Env, o.Env, o.Ports)
	}
	name := BalancerName(o.App, o.Env)
	b, err := FindBalancer(ctx, lbs, o.App, o.Env, o.Log)
	if err != nil {
		return nil, err
	}
	subnets, vpc, err := defaultSubnets(ctx, api)
	if err != nil {
		return nil, err
	}
	if b == nil {
		sg, err := balancerGroup(ctx, api, o)
		if err != nil {
			return nil, err
		}
		out, err := lbs.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{
			Name: aws.String(name), Type: elbtypes.LoadBalancerTypeEnumApplication, Scheme: elbtypes.LoadBalancerSchemeEnumInternetFacing,
			Subnets: subnets, SecurityGroups: []string{sg}, Tags: elbTags(o.App, o.Env),
		})
		if err != nil {
			return nil, fmt.Errorf("creating load balancer %s: %w", name, err)
		}
		lb := out.LoadBalancers[0]
		b = &Balancer{Name: name, DNSName: aws.ToString(lb.DNSName), LoadBalancerArn: aws.ToString(lb.LoadBalancerArn), elb: lbs, log: o.Log}
		b.defaults()
		fmt.Fprintf(o.Log, "created load balancer %s (%s)\n", name, b.DNSName)
	}
	if b.TargetGroupArn == "" {
		out, err := lbs.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{
			Name: aws.String(name), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80), VpcId: aws.String(vpc),
			TargetType: elbtypes.TargetTypeEnumInstance, HealthCheckPath: aws.String(routes.HealthPath),
			HealthCheckIntervalSeconds: aws.Int32(checkInterval), HealthCheckTimeoutSeconds: aws.Int32(checkTimeout),
			HealthyThresholdCount: aws.Int32(checkThreshold), UnhealthyThresholdCount: aws.Int32(checkThreshold),
			Matcher: &elbtypes.Matcher{HttpCode: aws.String("200")}, Tags: elbTags(o.App, o.Env),
		})
		if err != nil {
			return nil, fmt.Errorf("creating target group %s: %w", name, err)
		}
		b.TargetGroupArn = aws.ToString(out.TargetGroups[0].TargetGroupArn)
		fmt.Fprintf(o.Log, "created target group %s (HTTP:80, checked at %s)\n", name, routes.HealthPath)
	}
	if _, err := lbs.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(b.TargetGroupArn),
		Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String(fmt.Sprint(int(DeregistrationDelay.Seconds())))}}}); err != nil {
		return nil, fmt.Errorf("target group %s: deregistration delay: %w", name, err)
	}
	ls, err := lbs.DescribeListeners(ctx, &elb.DescribeListenersInput{LoadBalancerArn: aws.String(b.LoadBalancerArn)})
	if err != nil {
		return nil, fmt.Errorf("listeners of %s: %w", name, err)
	}
	if !slices.ContainsFunc(ls.Listeners, func(l elbtypes.Listener) bool { return aws.ToInt32(l.Port) == 80 }) {
		if _, err := lbs.CreateListener(ctx, &elb.CreateListenerInput{
			LoadBalancerArn: aws.String(b.LoadBalancerArn), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80),
			DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(b.TargetGroupArn)}},
			Tags:           elbTags(o.App, o.Env),
		}); err != nil {
			return nil, fmt.Errorf("creating the HTTP listener of %s: %w", name, err)
		}
		fmt.Fprintf(o.Log, "load balancer %s listens on HTTP:80\n", name)
	}
	return b, nil
}

// defaultSubnets returns the default VPC's default subnets, one per zone,
// and the VPC.
func defaultSubnets(ctx context.Context, api BalancerEC2) ([]string, string, error) {
	out, err := api.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}}})
	if err != nil {
		return nil, "", fmt.Errorf("default subnets: %w", err)
	}
	var ids []string
	var vpc string
	zones := map[string]bool{}
	for _, s := range out.Subnets {
		if zones[aws.ToString(s.AvailabilityZone)] {
			continue
		}
		zones[aws.ToString(s.AvailabilityZone)] = true
		ids = append(ids, aws.ToString(s.SubnetId))
		vpc = aws.ToString(s.VpcId)
	}
	if len(ids) < 2 {
		return nil, "", errors.New("a load balancer needs the default VPC's subnets in two zones or more, and this region has " + fmt.Sprint(len(ids)) + ": make the default VPC (aws ec2 create-default-vpc)")
	}
	return ids, vpc, nil
}

// balancerGroup returns the load balancer's security group, made if
// missing: HTTP (80) from everywhere.
func balancerGroup(ctx context.Context, api EC2, o Options) (string, error) {
	name := balancerGroupName(o.App, o.Env)
	out, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{{Name: aws.String("group-name"), Values: []string{name}}}})
	if err != nil {
		return "", fmt.Errorf("security group %s: %w", name, err)
	}
	var id string
	if len(out.SecurityGroups) > 0 {
		g := out.SecurityGroups[0]
		if tag(g.Tags, TagApp) != o.App || tag(g.Tags, TagEnv) != o.Env {
			return "", fmt.Errorf("security group %s (%s) already exists and is not tagged %s=%s, %s=%s: it is someone else's (rename or delete it)", name, aws.ToString(g.GroupId), TagApp, o.App, TagEnv, o.Env)
		}
		id = aws.ToString(g.GroupId)
	} else {
		cr, err := api.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
			GroupName: aws.String(name), Description: aws.String("JeCloud " + o.App + "/" + o.Env + " load balancer"),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup, Tags: []types.Tag{
				{Key: aws.String(TagApp), Value: aws.String(o.App)}, {Key: aws.String(TagEnv), Value: aws.String(o.Env)}}}},
		})
		if err != nil {
			return "", fmt.Errorf("creating security group %s: %w", name, err)
		}
		id = aws.ToString(cr.GroupId)
		fmt.Fprintf(o.Log, "created security group %s (%s)\n", name, id)
	}
	_, err = api.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: []types.IpPermission{{
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(80), ToPort: aws.Int32(80), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}})
	if err != nil && !isCode(err, "InvalidPermission.Duplicate") {
		return "", fmt.Errorf("security group %s: HTTP from everywhere: %w", name, err)
	}
	return id, nil
}

// TargetHealth is one target's state as the load balancer says: initial,
// healthy, unhealthy, unused, draining, unavailable; Reason says why.
type TargetHealth struct {
	InstanceID string `json:"instance_id"`
	State      string `json:"state"`
	Reason     string `json:"reason,omitempty"`
}

// Health returns the health of the targets (registered or draining).
func (b *Balancer) Health(ctx context.Context) ([]TargetHealth, error) {
	return b.health(ctx, "")
}

func (b *Balancer) health(ctx context.Context, id string) ([]TargetHealth, error) {
	if b.TargetGroupArn == "" {
		return nil, nil
	}
	in := &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(b.TargetGroupArn)}
	if id != "" {
		in.Targets = []elbtypes.TargetDescription{{Id: aws.String(id), Port: aws.Int32(80)}}
	}
	out, err := b.elb.DescribeTargetHealth(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("target health in %s: %w", b.Name, err)
	}
	var hs []TargetHealth
	for _, d := range out.TargetHealthDescriptions {
		h := TargetHealth{InstanceID: aws.ToString(d.Target.Id)}
		if d.TargetHealth != nil {
			h.State, h.Reason = string(d.TargetHealth.State), string(d.TargetHealth.Reason)
		}
		hs = append(hs, h)
	}
	return hs, nil
}

// state is one target's state ("unused" if not registered).
func (b *Balancer) state(ctx context.Context, id string) (TargetHealth, error) {
	hs, err := b.health(ctx, id)
	if err != nil {
		return TargetHealth{}, err
	}
	for _, h := range hs {
		if h.InstanceID == id {
			return h, nil
		}
	}
	return TargetHealth{InstanceID: id, State: "unused"}, nil
}

// wait polls id's state until done says so, for up to b.Timeout.
func (b *Balancer) wait(ctx context.Context, id, what string, done func(TargetHealth) bool) (TargetHealth, error) {
	deadline := time.Now().Add(b.Timeout)
	for {
		h, err := b.state(ctx, id)
		if err != nil {
			return h, err
		}
		if done(h) {
			return h, nil
		}
		if time.Now().After(deadline) {
			return h, fmt.Errorf("%s in load balancer %s: still %s (%s) after %s", what, b.Name, h.State, h.Reason, b.Timeout)
		}
		if err := sleep(ctx, b.Poll); err != nil {
			return h, err
		}
	}
}

// Out takes instance id out of rotation: deregistered, and drained (the
// requests under way finished) once Out returns. A target not registered
// is left as it is.
func (b *Balancer) Out(ctx context.Context, id, name string) error {
	h, err := b.state(ctx, id)
	if err != nil {
		return err
	}
	gone := func(h TargetHealth) bool { return h.State == "unused" && h.Reason != "Target.NotInUse" }
	if gone(h) {
		return nil
	}
	start := time.Now()
	if h.State != "draining" {
		if _, err := b.elb.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(b.TargetGroupArn),
			Targets: []elbtypes.TargetDescription{{Id: aws.String(id), Port: aws.Int32(80)}}}); err != nil {
			return fmt.Errorf("taking %s out of load balancer %s: %w", name, b.Name, err)
		}
	}
	fmt.Fprintf(b.log, "%s: out of load balancer %s, draining\n", name, b.Name)
	if _, err := b.wait(ctx, id, "draining "+name, gone); err != nil {
		return err
	}
	fmt.Fprintf(b.log, "%s: drained in %s\n", name, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// In puts instance id back in rotation once its front door's health path
// (at healthURL) answers 200: registered, and healthy when In returns.
func (b *Balancer) In(ctx context.Context, id, name, healthURL string) error {
	start := time.Now()
	deadline := start.Add(b.Timeout)
	for {
		err := b.get(ctx, healthURL)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s does not answer 200 after %s (%v): it stays out of load balancer %s", name, healthURL, b.Timeout, err, b.Name)
		}
		if err := sleep(ctx, b.Poll); err != nil {
			return err
		}
	}
	if _, err := b.elb.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(b.TargetGroupArn),
		Targets: []elbtypes.TargetDescription{{Id: aws.String(id), Port: aws.Int32(80)}}}); err != nil {
		return fmt.Errorf("putting %s back in load balancer %s: %w", name, b.Name, err)
	}
	if _, err := b.wait(ctx, id, "registering "+name, func(h TargetHealth) bool { return h.State == "healthy" }); err != nil {
		return err
	}
	fmt.Fprintf(b.log, "%s: back in load balancer %s, healthy after %s\n", name, b.Name, time.Since(start).Round(100*time.Millisecond))
	return nil
}

func (b *Balancer) get(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := b.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}

// DestroyBalancer deletes app/env's load balancer (its listeners with it),
// its target group and its security group, if tagged for app/env.
func DestroyBalancer(ctx context.Context, api EC2, lbs ELB, o Options) error {
	o.defaults()
	b, err := FindBalancer(ctx, lbs, o.App, o.Env, o.Log)
	if err != nil {
		return err
	}
	if b != nil {
		if _, err := lbs.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(b.LoadBalancerArn)}); err != nil {
			return fmt.Errorf("deleting load balancer %s: %w", b.Name, err)
		}
		fmt.Fprintf(o.Log, "deleted load balancer %s\n", b.Name)
	}
	name := BalancerName(o.App, o.Env)
	tgs, err := lbs.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{Names: []string{name}})
	switch {
	case isCode(err, "TargetGroupNotFound"):
	case err != nil:
		return fmt.Errorf("target group %s: %w", name, err)
	default:
		for _, tg := range tgs.TargetGroups {
			arn := aws.ToString(tg.TargetGroupArn)
			if err := checkTagged(ctx, lbs, arn, "target group "+name, o.App, o.Env); err != nil {
				fmt.Fprintf(o.Log, "%v: left alone\n", err)
				continue
			}
			// AWS lets the group go a little after its load balancer.
			if err := retryWhile(ctx, o, "ResourceInUse", func() error {
				_, err := lbs.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(arn)})
				return err
			}); err != nil {
				return fmt.Errorf("deleting target group %s: %w", name, err)
			}
			fmt.Fprintf(o.Log, "deleted target group %s\n", name)
		}
	}
	return deleteTaggedGroups(ctx, api, o, balancerGroupName(o.App, o.Env))
}
