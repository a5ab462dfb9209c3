package ec2test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Elastic Load Balancing v2 (Query API, version 2015-12-01): the
// application load balancers, target groups, listeners and targets JeCloud
// makes. Point a client at URL (AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2).
// With SetHAProxy, each HTTP listener is a real HAProxy on a loopback port
// (haproxy.go): registered targets are its servers, at their instance's
// private address, checked at the target group's health path.

const (
	elbVersion = "2015-12-01"
	elbNS      = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"

	// secondSubnet is the default VPC's subnet in a second zone: an
	// application load balancer needs two.
	secondSubnet = "subnet-0ec2ec2ec2ec2ec23"
	secondZone   = "us-east-1b"
)

type loadBalancer struct {
	arn, name, dns, scheme, vpc string
	subnets, groups             []string
	tags                        map[string]string
	created                     time.Time
	addr                        string // the loopback address standing for dns (with HAProxy)
	tlsAddr                     string // that of its HTTPS listener
}

type targetGroup struct {
	arn, name, protocol, vpc string
	port                     int
	path, matcher            string
	interval, timeout        int // seconds
	healthy, unhealthy       int
	attrs                    map[string]string
	tags                     map[string]string
	targets                  []*target // registered and draining, in registration order
}

// target is a target of a group: registered, or draining until drainEnd.
type target struct {
	id, addr  string // instance ID, its private address
	port      int
	draining  bool
	drainEnd  time.Time
	wasUp     bool // HAProxy has seen it healthy since it was registered
	slot      int  // its server slot in HAProxy (1-based)
	slotTaken bool
}

// elbState is the fake's ELBv2 resources (Server embeds it).
type elbState struct {
	lbs         []*loadBalancer
	tgs         []*targetGroup
	listeners   []*listener
	certs       []*certificate // ACM (acm.go)
	haproxyPath string         // SetHAProxy
	hapMu       sync.Mutex     // one syncHAProxy at a time
}

type listener struct {
	arn, lb, tg, protocol string
	cert                  string // an HTTPS listener's certificate
	port                  int
	hap                   *haproxy // nil without SetHAProxy
}

var elbActions = map[string]handler{
	"CreateLoadBalancer":            (*Server).createLoadBalancer,
	"DescribeLoadBalancers":         (*Server).describeLoadBalancers,
	"DeleteLoadBalancer":            (*Server).deleteLoadBalancer,
	"CreateTargetGroup":             (*Server).createTargetGroup,
	"DescribeTargetGroups":          (*Server).describeTargetGroups,
	"DeleteTargetGroup":             (*Server).deleteTargetGroup,
	"ModifyTargetGroupAttributes":   (*Server).modifyTargetGroupAttributes,
	"DescribeTargetGroupAttributes": (*Server).describeTargetGroupAttributes,
	"CreateListener":                (*Server).createListener,
	"DescribeListeners":             (*Server).describeListeners,
	"DeleteListener":                (*Server).deleteListener,
	"ModifyListener":                (*Server).modifyListener,
	"RegisterTargets":               (*Server).registerTargets,
	"DeregisterTargets":             (*Server).deregisterTargets,
	"DescribeTargetHealth":          (*Server).describeTargetHealth,
	"DescribeTags":                  (*Server).describeTags,
	"AddTags":                       (*Server).addTags,
}

func init() {
	ec2Actions["DescribeSubnets"] = (*Server).describeSubnets
}

// elbErr is an ELBv2 error answer (HTTP 400, or status).
func elbErr(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func notFound(code, format string, args ...any) *apiError {
	return elbErr(400, code, format, args...)
}

// elbNameRE is what names of load balancers and target groups may be:
// up to 32 alphanumerics and hyphens, no hyphen first or last.
var elbNameRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,30}[a-zA-Z0-9])?$`)

// httpCodeRE is the one HTTP code a matcher takes here.
var httpCodeRE = regexp.MustCompile(`^[0-9]{3}$`)

func checkELBName(kind, name string) error {
	switch {
	case name == "":
		return elbErr(400, "ValidationError", "%s name is required", kind)
	case !elbNameRE.MatchString(name):
		return elbErr(400, "ValidationError", "%s name '%s' can have a maximum of 32 characters, can contain only alphanumeric characters or hyphens, and must not begin or end with a hyphen", kind, name)
	case kind == "Load balancer" && strings.HasPrefix(name, "internal-"):
		return elbErr(400, "ValidationError", "Load balancer name '%s' cannot begin with 'internal-'", name)
	}
	return nil
}

// elbTags reads Tags.member.N.Key/Value.
func elbTags(form url.Values) (map[string]string, error) {
	tags := map[string]string{}
	for _, p := range members(form, "Tags.member") {
		k := form.Get(p + ".Key")
		if k == "" || len(k) > 128 || strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, elbErr(400, "ValidationError", "tag key '%s' is not valid", k)
		}
		tags[k] = form.Get(p + ".Value")
	}
	return tags, nil
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}

func (s *Server) lbByArn(arn string) *loadBalancer {
	for _, lb := range s.lbs {
		if lb.arn == arn {
			return lb
		}
	}
	return nil
}

func (s *Server) tgByArn(arn string) *targetGroup {
	for _, tg := range s.tgs {
		if tg.arn == arn {
			return tg
		}
	}
	return nil
}

// The answers' XML.

type elbMeta struct {
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

// emptyResult is the answer of an action whose result has nothing: an
// empty ActionResult (the SDK wants it) and the request ID.
func emptyResult(r *request) any {
	return &struct {
		Result struct{ XMLName xml.Name }
		elbMeta
	}{struct{ XMLName xml.Name }{xml.Name{Local: r.action + "Result"}}, elbMeta{r.id}}
}

type elbTag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

func elbTagList(tags map[string]string) []elbTag {
	var out []elbTag
	for _, t := range tagSet(tags) {
		out = append(out, elbTag{t.Key, t.Value})
	}
	return out
}

type xmlLB struct {
	LoadBalancerArn       string `xml:"LoadBalancerArn"`
	DNSName               string `xml:"DNSName"`
	CanonicalHostedZoneID string `xml:"CanonicalHostedZoneId"`
	CreatedTime           string `xml:"CreatedTime"`
	LoadBalancerName      string `xml:"LoadBalancerName"`
	Scheme                string `xml:"Scheme"`
	VpcID                 string `xml:"VpcId"`
	State                 struct {
		Code string `xml:"Code"`
	} `xml:"State"`
	Type              string `xml:"Type"`
	AvailabilityZones []struct {
		ZoneName string `xml:"ZoneName"`
		SubnetID string `xml:"SubnetId"`
	} `xml:"AvailabilityZones>member"`
	SecurityGroups []string `xml:"SecurityGroups>member"`
	IPAddressType  string   `xml:"IpAddressType"`
}

func lbXML(lb *loadBalancer) xmlLB {
	x := xmlLB{LoadBalancerArn: lb.arn, DNSName: lb.dns, CanonicalHostedZoneID: "Z35SXDOTRQ7X7K", CreatedTime: timestamp(lb.created),
		LoadBalancerName: lb.name, Scheme: lb.scheme, VpcID: lb.vpc, Type: "application", SecurityGroups: lb.groups, IPAddressType: "ipv4"}
	x.State.Code = "active"
	for _, sn := range lb.subnets {
		z := zone
		if sn == secondSubnet {
			z = secondZone
		}
		x.AvailabilityZones = append(x.AvailabilityZones, struct {
			ZoneName string `xml:"ZoneName"`
			SubnetID string `xml:"SubnetId"`
		}{z, sn})
	}
	return x
}

// createLoadBalancer makes an internet-facing application load balancer
// in two or more subnets of the default VPC. A second call with the same
// name and the same settings returns the same load balancer, as AWS does.
func (s *Server) createLoadBalancer(r *request) (any, error) {
	f := r.form
	name := f.Get("Name")
	if err := checkELBName("Load balancer", name); err != nil {
		return nil, err
	}
	if t := f.Get("Type"); t != "" && t != "application" {
		return nil, elbErr(400, "ValidationError", "the fake makes application load balancers only, not %q", t)
	}
	scheme := f.Get("Scheme")
	if scheme == "" {
		scheme = "internet-facing"
	}
	if scheme != "internet-facing" && scheme != "internal" {
		return nil, elbErr(400, "ValidationError", "Scheme '%s' is not valid", scheme)
	}
	subnets := list(f, "Subnets.member")
	for _, p := range members(f, "SubnetMappings.member") {
		subnets = append(subnets, f.Get(p+".SubnetId"))
	}
	zones := map[string]bool{}
	for _, sn := range subnets {
		switch sn {
		case defaultSubnet:
			zones[zone] = true
		case secondSubnet:
			zones[secondZone] = true
		default:
			return nil, elbErr(400, "SubnetNotFound", "The subnet ID '%s' is not valid", sn)
		}
	}
	if len(zones) < 2 {
		return nil, elbErr(400, "ValidationError", "At least two subnets in two different Availability Zones must be specified")
	}
	tags, err := elbTags(f)
	if err != nil {
		return nil, err
	}
	groups := list(f, "SecurityGroups.member")
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range groups {
		if s.groupByID(g) == nil {
			return nil, elbErr(400, "InvalidSecurityGroup", "Security group '%s' does not exist", g)
		}
	}
	if len(groups) == 0 {
		groups = []string{s.groups[0].id}
	}
	for _, lb := range s.lbs {
		if lb.name == name {
			if lb.scheme != scheme || !slices.Equal(lb.groups, groups) {
				return nil, elbErr(400, "DuplicateLoadBalancerName", "A load balancer with the same name '%s' exists, but with different settings", name)
			}
			return &struct {
				LoadBalancers []xmlLB `xml:"CreateLoadBalancerResult>LoadBalancers>member"`
				elbMeta
			}{[]xmlLB{lbXML(lb)}, elbMeta{r.id}}, nil
		}
	}
	id := shortHash(name + time.Now().String())[:16]
	lb := &loadBalancer{
		arn:  "arn:aws:elasticloadbalancing:" + region + ":" + s.Account + ":loadbalancer/app/" + name + "/" + id,
		name: name, dns: name + "-" + id[:10] + "." + region + ".elb.amazonaws.com", scheme: scheme, vpc: defaultVPC,
		subnets: subnets, groups: groups, tags: tags, created: time.Now(),
	}
	s.lbs = append(s.lbs, lb)
	return &struct {
		LoadBalancers []xmlLB `xml:"CreateLoadBalancerResult>LoadBalancers>member"`
		elbMeta
	}{[]xmlLB{lbXML(lb)}, elbMeta{r.id}}, nil
}

func (s *Server) describeLoadBalancers(r *request) (any, error) {
	names, arns := list(r.form, "Names.member"), list(r.form, "LoadBalancerArns.member")
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []xmlLB
	for _, n := range names {
		i := slices.IndexFunc(s.lbs, func(lb *loadBalancer) bool { return lb.name == n })
		if i < 0 {
			return nil, notFound("LoadBalancerNotFound", "Load balancers '[%s]' not found", n)
		}
		out = append(out, lbXML(s.lbs[i]))
	}
	for _, a := range arns {
		lb := s.lbByArn(a)
		if lb == nil {
			return nil, notFound("LoadBalancerNotFound", "Load balancers '[%s]' not found", a)
		}
		out = append(out, lbXML(lb))
	}
	if len(names) == 0 && len(arns) == 0 {
		for _, lb := range s.lbs {
			out = append(out, lbXML(lb))
		}
	}
	return &struct {
		LoadBalancers []xmlLB `xml:"DescribeLoadBalancersResult>LoadBalancers>member"`
		elbMeta
	}{out, elbMeta{r.id}}, nil
}

// deleteLoadBalancer deletes a load balancer and its listeners (their
// HAProxy stops); deleting one that does not exist succeeds.
func (s *Server) deleteLoadBalancer(r *request) (any, error) {
	arn := r.form.Get("LoadBalancerArn")
	if arn == "" {
		return nil, elbErr(400, "ValidationError", "LoadBalancerArn is required")
	}
	s.mu.Lock()
	var stop []*haproxy
	s.lbs = slices.DeleteFunc(s.lbs, func(lb *loadBalancer) bool { return lb.arn == arn })
	s.listeners = slices.DeleteFunc(s.listeners, func(l *listener) bool {
		if l.lb == arn && l.hap != nil {
			stop = append(stop, l.hap)
		}
		return l.lb == arn
	})
	s.mu.Unlock()
	for _, h := range stop {
		h.stop()
	}
	return emptyResult(r), nil
}

type xmlTG struct {
	TargetGroupArn             string   `xml:"TargetGroupArn"`
	TargetGroupName            string   `xml:"TargetGroupName"`
	Protocol                   string   `xml:"Protocol"`
	Port                       int      `xml:"Port"`
	VpcID                      string   `xml:"VpcId"`
	HealthCheckProtocol        string   `xml:"HealthCheckProtocol"`
	HealthCheckPort            string   `xml:"HealthCheckPort"`
	HealthCheckEnabled         bool     `xml:"HealthCheckEnabled"`
	HealthCheckIntervalSeconds int      `xml:"HealthCheckIntervalSeconds"`
	HealthCheckTimeoutSeconds  int      `xml:"HealthCheckTimeoutSeconds"`
	HealthyThresholdCount      int      `xml:"HealthyThresholdCount"`
	UnhealthyThresholdCount    int      `xml:"UnhealthyThresholdCount"`
	HealthCheckPath            string   `xml:"HealthCheckPath"`
	HTTPCode                   string   `xml:"Matcher>HttpCode"`
	LoadBalancerArns           []string `xml:"LoadBalancerArns>member"`
	TargetType                 string   `xml:"TargetType"`
}

func (s *Server) tgXML(tg *targetGroup) xmlTG {
	x := xmlTG{TargetGroupArn: tg.arn, TargetGroupName: tg.name, Protocol: tg.protocol, Port: tg.port, VpcID: tg.vpc,
		HealthCheckProtocol: "HTTP", HealthCheckPort: "traffic-port", HealthCheckEnabled: true,
		HealthCheckIntervalSeconds: tg.interval, HealthCheckTimeoutSeconds: tg.timeout,
		HealthyThresholdCount: tg.healthy, UnhealthyThresholdCount: tg.unhealthy,
		HealthCheckPath: tg.path, HTTPCode: tg.matcher, TargetType: "instance"}
	for _, l := range s.listeners {
		if l.tg == tg.arn && !slices.Contains(x.LoadBalancerArns, l.lb) {
			x.LoadBalancerArns = append(x.LoadBalancerArns, l.lb)
		}
	}
	return x
}

// intParam reads an integer parameter in [lo, hi], def if absent.
func intParam(f url.Values, name string, def, lo, hi int) (int, error) {
	v := f.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, elbErr(400, "ValidationError", "%s '%s' must be between %d and %d", name, v, lo, hi)
	}
	return n, nil
}

// createTargetGroup makes an HTTP target group of instances; a second call
// with the same name and settings returns the same group.
func (s *Server) createTargetGroup(r *request) (any, error) {
	f := r.form
	name := f.Get("Name")
	if err := checkELBName("Target group", name); err != nil {
		return nil, err
	}
	proto := f.Get("Protocol")
	if proto != "HTTP" {
		return nil, elbErr(400, "ValidationError", "the fake's target groups are HTTP, not %q", proto)
	}
	if tt := f.Get("TargetType"); tt != "" && tt != "instance" {
		return nil, elbErr(400, "ValidationError", "the fake's target groups are of instances, not %q", tt)
	}
	if vpc := f.Get("VpcId"); vpc != defaultVPC {
		return nil, elbErr(400, "ValidationError", "The VPC ID '%s' is not found", vpc)
	}
	tg := &targetGroup{name: name, protocol: proto, vpc: defaultVPC, matcher: "200", attrs: map[string]string{"deregistration_delay.timeout_seconds": "300"}}
	var err error
	if tg.port, err = intParam(f, "Port", 0, 1, 65535); err != nil {
		return nil, err
	}
	if tg.port == 0 {
		return nil, elbErr(400, "ValidationError", "A port must be specified")
	}
	if tg.interval, err = intParam(f, "HealthCheckIntervalSeconds", 30, 5, 300); err != nil {
		return nil, err
	}
	if tg.timeout, err = intParam(f, "HealthCheckTimeoutSeconds", 5, 2, 120); err != nil {
		return nil, err
	}
	if tg.timeout >= tg.interval {
		return nil, elbErr(400, "ValidationError", "Health check interval must be greater than the timeout.")
	}
	if tg.healthy, err = intParam(f, "HealthyThresholdCount", 5, 2, 10); err != nil {
		return nil, err
	}
	if tg.unhealthy, err = intParam(f, "UnhealthyThresholdCount", 2, 2, 10); err != nil {
		return nil, err
	}
	tg.path = f.Get("HealthCheckPath")
	if tg.path == "" {
		tg.path = "/"
	}
	if !strings.HasPrefix(tg.path, "/") || len(tg.path) > 1024 || strings.ContainsAny(tg.path, " \t\r\n") {
		return nil, elbErr(400, "ValidationError", "Health check path '%s' must begin with '/' and hold no space", tg.path)
	}
	if m := f.Get("Matcher.HttpCode"); m != "" {
		if !httpCodeRE.MatchString(m) {
			return nil, elbErr(400, "ValidationError", "the fake takes one HTTP code as Matcher, not %q", m)
		}
		tg.matcher = m
	}
	if tg.tags, err = elbTags(f); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.tgs {
		if o.name == name {
			if o.port != tg.port || o.path != tg.path || o.interval != tg.interval || o.healthy != tg.healthy {
				return nil, elbErr(400, "DuplicateTargetGroupName", "A target group with the same name '%s' exists, but with different settings", name)
			}
			tg = o
			return &struct {
				TargetGroups []xmlTG `xml:"CreateTargetGroupResult>TargetGroups>member"`
				elbMeta
			}{[]xmlTG{s.tgXML(tg)}, elbMeta{r.id}}, nil
		}
	}
	tg.arn = "arn:aws:elasticloadbalancing:" + region + ":" + s.Account + ":targetgroup/" + name + "/" + shortHash(name + time.Now().String())[:16]
	s.tgs = append(s.tgs, tg)
	return &struct {
		TargetGroups []xmlTG `xml:"CreateTargetGroupResult>TargetGroups>member"`
		elbMeta
	}{[]xmlTG{s.tgXML(tg)}, elbMeta{r.id}}, nil
}

func (s *Server) describeTargetGroups(r *request) (any, error) {
	names, arns, lb := list(r.form, "Names.member"), list(r.form, "TargetGroupArns.member"), r.form.Get("LoadBalancerArn")
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []xmlTG
	for _, n := range names {
		i := slices.IndexFunc(s.tgs, func(tg *targetGroup) bool { return tg.name == n })
		if i < 0 {
			return nil, notFound("TargetGroupNotFound", "Target groups '[%s]' not found", n)
		}
		out = append(out, s.tgXML(s.tgs[i]))
	}
	for _, a := range arns {
		tg := s.tgByArn(a)
		if tg == nil {
			return nil, notFound("TargetGroupNotFound", "Target groups '[%s]' not found", a)
		}
		out = append(out, s.tgXML(tg))
	}
	if lb != "" {
		if s.lbByArn(lb) == nil {
			return nil, notFound("LoadBalancerNotFound", "Load balancers '[%s]' not found", lb)
		}
		for _, tg := range s.tgs {
			if x := s.tgXML(tg); slices.Contains(x.LoadBalancerArns, lb) {
				out = append(out, x)
			}
		}
	}
	if len(names) == 0 && len(arns) == 0 && lb == "" {
		for _, tg := range s.tgs {
			out = append(out, s.tgXML(tg))
		}
	}
	return &struct {
		TargetGroups []xmlTG `xml:"DescribeTargetGroupsResult>TargetGroups>member"`
		elbMeta
	}{out, elbMeta{r.id}}, nil
}

// deleteTargetGroup deletes a group no listener uses.
func (s *Server) deleteTargetGroup(r *request) (any, error) {
	arn := r.form.Get("TargetGroupArn")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tgByArn(arn) == nil {
		return nil, notFound("TargetGroupNotFound", "Target groups '[%s]' not found", arn)
	}
	for _, l := range s.listeners {
		if l.tg == arn {
			return nil, elbErr(400, "ResourceInUse", "Target group '%s' is currently in use by a listener or a rule", arn)
		}
	}
	s.tgs = slices.DeleteFunc(s.tgs, func(tg *targetGroup) bool { return tg.arn == arn })
	return emptyResult(r), nil
}

type xmlAttr struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

func attrList(m map[string]string) []xmlAttr {
	var out []xmlAttr
	for _, t := range tagSet(m) {
		out = append(out, xmlAttr{t.Key, t.Value})
	}
	return out
}

// knownAttrs are the target group attributes the fake takes, with their
// checks.
var knownAttrs = map[string]func(string) bool{
	"deregistration_delay.timeout_seconds": func(v string) bool { n, err := strconv.Atoi(v); return err == nil && n >= 0 && n <= 3600 },
	"slow_start.duration_seconds":          func(v string) bool { n, err := strconv.Atoi(v); return err == nil && (n == 0 || n >= 30 && n <= 900) },
	"stickiness.enabled":                   func(v string) bool { return v == "true" || v == "false" },
}

func (s *Server) modifyTargetGroupAttributes(r *request) (any, error) {
	arn := r.form.Get("TargetGroupArn")
	set := map[string]string{}
	for _, p := range members(r.form, "Attributes.member") {
		k, v := r.form.Get(p+".Key"), r.form.Get(p+".Value")
		ok := knownAttrs[k]
		if ok == nil {
			return nil, elbErr(400, "InvalidConfigurationRequest", "The attribute '%s' is not known", k)
		}
		if !ok(v) {
			return nil, elbErr(400, "InvalidConfigurationRequest", "'%s' is not a valid value of '%s'", v, k)
		}
		set[k] = v
	}
	if len(set) == 0 {
		return nil, elbErr(400, "ValidationError", "Attributes is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tg := s.tgByArn(arn)
	if tg == nil {
		return nil, notFound("TargetGroupNotFound", "Target groups '[%s]' not found", arn)
	}
	for k, v := range set {
		tg.attrs[k] = v
	}
	return &struct {
		Attributes []xmlAttr `xml:"ModifyTargetGroupAttributesResult>Attributes>member"`
		elbMeta
	}{attrList(tg.attrs), elbMeta{r.id}}, nil
}

func (s *Server) describeTargetGroupAttributes(r *request) (any, error) {
	arn := r.form.Get("TargetGroupArn")
	s.mu.Lock()
	defer s.mu.Unlock()
	tg := s.tgByArn(arn)
	if tg == nil {
		return nil, notFound("TargetGroupNotFound", "Target groups '[%s]' not found", arn)
	}
	return &struct {
		Attributes []xmlAttr `xml:"DescribeTargetGroupAttributesResult>Attributes>member"`
		elbMeta
	}{attrList(tg.attrs), elbMeta{r.id}}, nil
}

type xmlListener struct {
	ListenerArn     string   `xml:"ListenerArn"`
	LoadBalancerArn string   `xml:"LoadBalancerArn"`
	Port            int      `xml:"Port"`
	Protocol        string   `xml:"Protocol"`
	Certificates    []string `xml:"Certificates>member>CertificateArn"`
	DefaultActions  []struct {
		Type           string `xml:"Type"`
		TargetGroupArn string `xml:"TargetGroupArn"`
	} `xml:"DefaultActions>member"`
}

func listenerXML(l *listener) xmlListener {
	x := xmlListener{ListenerArn: l.arn, LoadBalancerArn: l.lb, Port: l.port, Protocol: l.protocol}
	if l.cert != "" {
		x.Certificates = []string{l.cert}
	}
	x.DefaultActions = append(x.DefaultActions, struct {
		Type           string `xml:"Type"`
		TargetGroupArn string `xml:"TargetGroupArn"`
	}{"forward", l.tg})
	return x
}

// createListener makes an HTTP listener that forwards to one target group;
// with HAProxy, that HAProxy starts, its servers the group's targets.
func (s *Server) createListener(r *request) (any, error) {
	f := r.form
	lbArn := f.Get("LoadBalancerArn")
	proto := f.Get("Protocol")
	if proto != "HTTP" && proto != "HTTPS" {
		return nil, elbErr(400, "ValidationError", "the fake's listeners are HTTP or HTTPS, not %q", proto)
	}
	certs := members(f, "Certificates.member")
	switch {
	case proto == "HTTPS" && len(certs) != 1:
		return nil, elbErr(400, "CertificateNotFound", "An HTTPS listener needs one certificate (the fake takes one)")
	case proto == "HTTP" && len(certs) > 0:
		return nil, elbErr(400, "ValidationError", "An HTTP listener takes no certificate")
	}
	var certArn string
	var certNames []string
	if len(certs) == 1 {
		certArn = f.Get(certs[0] + ".CertificateArn")
		var err error
		if certNames, err = s.issuedCert(certArn); err != nil {
			return nil, err
		}
	}
	port, err := intParam(f, "Port", 0, 1, 65535)
	if err != nil {
		return nil, err
	}
	if port == 0 {
		return nil, elbErr(400, "ValidationError", "A listener port must be specified")
	}
	acts := members(f, "DefaultActions.member")
	if len(acts) != 1 || f.Get(acts[0]+".Type") != "forward" || f.Get(acts[0]+".TargetGroupArn") == "" {
		return nil, elbErr(400, "ValidationError", "the fake's listeners take one default action, forward to a target group")
	}
	tgArn := f.Get(acts[0] + ".TargetGroupArn")
	s.mu.Lock()
	lb, tg := s.lbByArn(lbArn), s.tgByArn(tgArn)
	switch {
	case lb == nil:
		s.mu.Unlock()
		return nil, notFound("LoadBalancerNotFound", "Load balancers '[%s]' not found", lbArn)
	case tg == nil:
		s.mu.Unlock()
		return nil, notFound("TargetGroupNotFound", "Target groups '[%s]' not found", tgArn)
	}
	for _, l := range s.listeners {
		if l.lb == lbArn && l.port == port {
			if l.tg != tgArn {
				s.mu.Unlock()
				return nil, elbErr(400, "DuplicateListener", "A listener already exists on this port for this load balancer")
			}
			x := listenerXML(l)
			s.mu.Unlock()
			return &struct {
				Listeners []xmlListener `xml:"CreateListenerResult>Listeners>member"`
				elbMeta
			}{[]xmlListener{x}, elbMeta{r.id}}, nil
		}
	}
	l := &listener{arn: strings.Replace(lb.arn, ":loadbalancer/", ":listener/", 1) + "/" + shortHash(tgArn + strconv.Itoa(port))[:16],
		lb: lbArn, tg: tgArn, protocol: proto, port: port, cert: certArn}
	s.listeners = append(s.listeners, l)
	start := s.haproxyPath != ""
	s.mu.Unlock()
	if start {
		var pemFile []byte
		if proto == "HTTPS" {
			var err error
			if pemFile, err = selfSigned(certNames); err != nil {
				return nil, err
			}
		}
		h, err := s.startHAProxy(lb, tg, pemFile)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		l.hap = h
		if proto == "HTTPS" {
			lb.tlsAddr = h.front
		} else {
			lb.addr = h.front
		}
		s.mu.Unlock()
		s.syncHAProxy(tgArn)
	}
	return &struct {
		Listeners []xmlListener `xml:"CreateListenerResult>Listeners>member"`
		elbMeta
	}{[]xmlListener{listenerXML(l)}, elbMeta{r.id}}, nil
}

func (s *Server) describeListeners(r *request) (any, error) {
	lbArn, arns := r.form.Get("LoadBalancerArn"), list(r.form, "ListenerArns.member")
	s.mu.Lock()
	defer s.mu.Unlock()
	if lbArn == "" && len(arns) == 0 {
		return nil, elbErr(400, "ValidationError", "You must specify either listener ARNs or a load balancer ARN")
	}
	if lbArn != "" && s.lbByArn(lbArn) == nil {
		return nil, notFound("LoadBalancerNotFound", "Load balancers '[%s]' not found", lbArn)
	}
	var out []xmlListener
	for _, l := range s.listeners {
		if l.lb == lbArn || slices.Contains(arns, l.arn) {
			out = append(out, listenerXML(l))
		}
	}
	return &struct {
		Listeners []xmlListener `xml:"DescribeListenersResult>Listeners>member"`
		elbMeta
	}{out, elbMeta{r.id}}, nil
}

// issuedCert returns the names of the ACM certificate arn, or the error
// ELBv2 gives for a listener with it: not found, or not issued yet.
func (s *Server) issuedCert(arn string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.certByArn(arn)
	if c == nil {
		return nil, elbErr(400, "CertificateNotFound", "Certificate '%s' not found", arn)
	}
	if c.status != "ISSUED" {
		return nil, elbErr(400, "UnsupportedCertificate", "The certificate '%s' must be issued before it is used (it is %s)", arn, c.status)
	}
	return slices.Clone(c.sans), nil
}

// modifyListener changes an HTTPS listener's certificate (the fake's
// ModifyListener takes nothing else). With HAProxy, the listener's
// HAProxy is started again with a stand-in for the new certificate, on a
// new port (AWS swaps it without a dropped connection; tests that need
// that do not go through here).
func (s *Server) modifyListener(r *request) (any, error) {
	f := r.form
	arn := f.Get("ListenerArn")
	certs := members(f, "Certificates.member")
	for _, k := range []string{"Port", "Protocol", "SslPolicy", "DefaultActions.member.1.Type"} {
		if f.Get(k) != "" {
			return nil, elbErr(400, "ValidationError", "the fake's ModifyListener changes the certificate only, not %s", k)
		}
	}
	if len(certs) != 1 {
		return nil, elbErr(400, "ValidationError", "the fake's ModifyListener takes one certificate")
	}
	certArn := f.Get(certs[0] + ".CertificateArn")
	names, err := s.issuedCert(certArn)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	i, err := s.listenerIndex(arn)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	l := s.listeners[i]
	if l.protocol != "HTTPS" {
		s.mu.Unlock()
		return nil, elbErr(400, "ValidationError", "An HTTP listener takes no certificate")
	}
	l.cert = certArn
	old := l.hap
	lb, tg := s.lbByArn(l.lb), s.tgByArn(l.tg)
	s.mu.Unlock()
	if old != nil && lb != nil && tg != nil {
		old.stop()
		pemFile, err := selfSigned(names)
		if err != nil {
			return nil, err
		}
		h, err := s.startHAProxy(lb, tg, pemFile)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		l.hap, lb.tlsAddr = h, h.front
		s.mu.Unlock()
		s.syncHAProxy(l.tg)
	}
	s.mu.Lock()
	x := listenerXML(l)
	s.mu.Unlock()
	return &struct {
		Listeners []xmlListener `xml:"ModifyListenerResult>Listeners>member"`
		elbMeta
	}{[]xmlListener{x}, elbMeta{r.id}}, nil
}

// listenerIndex is where the listener arn is in s.listeners (s.mu held).
func (s *Server) listenerIndex(arn string) (int, error) {
	i := slices.IndexFunc(s.listeners, func(l *listener) bool { return l.arn == arn })
	if i < 0 {
		return 0, notFound("ListenerNotFound", "Listener '%s' not found", arn)
	}
	return i, nil
}

func (s *Server) deleteListener(r *request) (any, error) {
	arn := r.form.Get("ListenerArn")
	s.mu.Lock()
	i, err := s.listenerIndex(arn)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	l := s.listeners[i]
	s.listeners = slices.Delete(s.listeners, i, i+1)
	if lb := s.lbByArn(l.lb); lb != nil && l.hap != nil {
		if l.protocol == "HTTPS" {
			lb.tlsAddr = ""
		} else {
			lb.addr = ""
		}
	}
	s.mu.Unlock()
	if l.hap != nil {
		l.hap.stop()
	}
	return emptyResult(r), nil
}

// targetsParam reads Targets.member.N.Id/Port; a target's port defaults
// to the group's.
func targetsParam(f url.Values, def int) ([]target, error) {
	var out []target
	for _, p := range members(f, "Targets.member") {
		t := target{id: f.Get(p + ".Id"), port: def}
		if t.id == "" {
			return nil, elbErr(400, "ValidationError", "A target ID must be specified")
		}
		if v := f.Get(p + ".Port"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65535 {
				return nil, elbErr(400, "ValidationError", "Target port '%s' is not valid", v)
			}
			t.port = n
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, elbErr(400, "ValidationError", "Targets is required")
	}
	return out, nil
}

// changeTargets runs change on the group TargetGroupArn names and the
// targets the request lists (s.mu held), then brings its HAProxy in step.
func (s *Server) changeTargets(r *request, change func(tg *targetGroup, ts []target) error) (any, error) {
	arn := r.form.Get("TargetGroupArn")
	s.mu.Lock()
	tg := s.tgByArn(arn)
	if tg == nil {
		s.mu.Unlock()
		return nil, notFound("TargetGroupNotFound", "Target groups '[%s]' not found", arn)
	}
	ts, err := targetsParam(r.form, tg.port)
	if err == nil {
		err = change(tg, ts)
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	s.syncHAProxy(arn)
	return emptyResult(r), nil
}

// registerTargets adds running instances of the VPC to a group (again, for
// a draining one: it is in service anew).
func (s *Server) registerTargets(r *request) (any, error) {
	return s.changeTargets(r, func(tg *targetGroup, ts []target) error {
		for i, t := range ts {
			inst := s.instance(t.id)
			if inst == nil || inst.State != "running" {
				return elbErr(400, "InvalidTarget", "The following targets are not in a running state and cannot be registered: '%s'", t.id)
			}
			ts[i].addr = inst.PrivateIP
		}
		for _, t := range ts {
			if i := slices.IndexFunc(tg.targets, func(o *target) bool { return o.id == t.id && o.port == t.port }); i >= 0 {
				if o := tg.targets[i]; o.draining {
					o.draining, o.wasUp = false, false
				}
				continue
			}
			nt := t
			tg.targets = append(tg.targets, &nt)
		}
		return nil
	})
}

// deregisterTargets starts draining targets: no new requests go to them,
// and after the group's deregistration delay they are gone.
func (s *Server) deregisterTargets(r *request) (any, error) {
	return s.changeTargets(r, func(tg *targetGroup, ts []target) error {
		delay, _ := strconv.Atoi(tg.attrs["deregistration_delay.timeout_seconds"])
		for _, t := range ts {
			i := slices.IndexFunc(tg.targets, func(o *target) bool { return o.id == t.id && o.port == t.port })
			if i < 0 {
				return elbErr(400, "InvalidTarget", "The following targets are not registered in target group '%s': '%s'", tg.arn, t.id)
			}
			if o := tg.targets[i]; !o.draining {
				o.draining, o.drainEnd = true, time.Now().Add(time.Duration(delay)*time.Second)
			}
		}
		return nil
	})
}

type xmlTargetHealth struct {
	Target struct {
		ID   string `xml:"Id"`
		Port int    `xml:"Port"`
	} `xml:"Target"`
	HealthCheckPort string `xml:"HealthCheckPort"`
	TargetHealth    struct {
		State       string `xml:"State"`
		Reason      string `xml:"Reason,omitempty"`
		Description string `xml:"Description,omitempty"`
	} `xml:"TargetHealth"`
}

// describeTargetHealth reports each target's state: initial until HAProxy
// first sees it up, then healthy or unhealthy as HAProxy sees it (without
// HAProxy: healthy), draining for the deregistration delay, unused once
// gone (or while no listener uses the group).
func (s *Server) describeTargetHealth(r *request) (any, error) {
	arn := r.form.Get("TargetGroupArn")
	s.mu.Lock()
	tg := s.tgByArn(arn)
	s.mu.Unlock()
	if tg == nil {
		return nil, notFound("TargetGroupNotFound", "Target groups '[%s]' not found", arn)
	}
	var asked []target
	if len(members(r.form, "Targets.member")) > 0 {
		var err error
		if asked, err = targetsParam(r.form, tg.port); err != nil {
			return nil, err
		}
	}
	s.syncHAProxy(arn) // ends drains that are over
	status := s.haproxyStatus(arn)
	s.mu.Lock()
	defer s.mu.Unlock()
	used := slices.ContainsFunc(s.listeners, func(l *listener) bool { return l.tg == arn })
	describe := func(t *target, id string, port int) xmlTargetHealth {
		var x xmlTargetHealth
		x.Target.ID, x.Target.Port, x.HealthCheckPort = id, port, strconv.Itoa(port)
		th := &x.TargetHealth
		switch {
		case t == nil:
			th.State, th.Reason, th.Description = "unused", "Target.NotRegistered", "Target is not registered to the target group"
		case t.draining:
			th.State, th.Reason, th.Description = "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"
		case !used:
			th.State, th.Reason, th.Description = "unused", "Target.NotInUse", "Target group is not configured to receive traffic from the load balancer"
		case s.haproxyPath == "":
			th.State = "healthy"
		default:
			st := status[t.slot]
			switch {
			case strings.HasPrefix(st, "UP"):
				t.wasUp = true
				th.State = "healthy"
			case !t.wasUp:
				th.State, th.Reason, th.Description = "initial", "Elb.RegistrationInProgress", "Target registration is in progress"
			default:
				th.State, th.Reason, th.Description = "unhealthy", "Target.FailedHealthChecks", "Health checks failed ("+st+")"
			}
		}
		return x
	}
	var out []xmlTargetHealth
	if asked != nil {
		for _, a := range asked {
			i := slices.IndexFunc(tg.targets, func(o *target) bool { return o.id == a.id && o.port == a.port })
			var t *target
			if i >= 0 {
				t = tg.targets[i]
			} else if s.instance(a.id) == nil {
				return nil, elbErr(400, "InvalidTarget", "The following targets are not valid: '%s'", a.id)
			}
			out = append(out, describe(t, a.id, a.port))
		}
	} else {
		for _, t := range tg.targets {
			out = append(out, describe(t, t.id, t.port))
		}
	}
	return &struct {
		Descriptions []xmlTargetHealth `xml:"DescribeTargetHealthResult>TargetHealthDescriptions>member"`
		elbMeta
	}{out, elbMeta{r.id}}, nil
}

// resourceTags returns the tags of an ELBv2 resource by ARN.
func (s *Server) resourceTags(arn string) map[string]string {
	if lb := s.lbByArn(arn); lb != nil {
		return lb.tags
	}
	if tg := s.tgByArn(arn); tg != nil {
		return tg.tags
	}
	return nil
}

func (s *Server) describeTags(r *request) (any, error) {
	arns := list(r.form, "ResourceArns.member")
	if len(arns) == 0 || len(arns) > 20 {
		return nil, elbErr(400, "ValidationError", "ResourceArns takes 1 to 20 ARNs")
	}
	type desc struct {
		ResourceArn string   `xml:"ResourceArn"`
		Tags        []elbTag `xml:"Tags>member"`
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []desc
	for _, a := range arns {
		tags := s.resourceTags(a)
		if tags == nil {
			if strings.Contains(a, ":targetgroup/") {
				return nil, notFound("TargetGroupNotFound", "Target groups '[%s]' not found", a)
			}
			return nil, notFound("LoadBalancerNotFound", "Load balancers '[%s]' not found", a)
		}
		out = append(out, desc{a, elbTagList(tags)})
	}
	return &struct {
		TagDescriptions []desc `xml:"DescribeTagsResult>TagDescriptions>member"`
		elbMeta
	}{out, elbMeta{r.id}}, nil
}

func (s *Server) addTags(r *request) (any, error) {
	arns := list(r.form, "ResourceArns.member")
	tags, err := elbTags(r.form)
	if err != nil {
		return nil, err
	}
	if len(arns) == 0 || len(tags) == 0 {
		return nil, elbErr(400, "ValidationError", "ResourceArns and Tags are required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range arns {
		m := s.resourceTags(a)
		if m == nil {
			return nil, notFound("LoadBalancerNotFound", "Load balancers '[%s]' not found", a)
		}
		for k, v := range tags {
			m[k] = v
		}
	}
	return emptyResult(r), nil
}

// describeSubnets is EC2 DescribeSubnets: the default VPC's two subnets
// (filters default-for-az, vpc-id, subnet-id, availability-zone).
func (s *Server) describeSubnets(r *request) (any, error) {
	fs, err := filters(r.form, "default-for-az", "vpc-id", "subnet-id", "availability-zone")
	if err != nil {
		return nil, err
	}
	ids := list(r.form, "SubnetId")
	type xmlSubnet struct {
		SubnetID         string `xml:"subnetId"`
		VpcID            string `xml:"vpcId"`
		AvailabilityZone string `xml:"availabilityZone"`
		CidrBlock        string `xml:"cidrBlock"`
		DefaultForAz     bool   `xml:"defaultForAz"`
		State            string `xml:"state"`
	}
	all := []xmlSubnet{
		{defaultSubnet, defaultVPC, zone, "172.31.0.0/20", true, "available"},
		{secondSubnet, defaultVPC, secondZone, "172.31.16.0/20", true, "available"},
	}
	var out []xmlSubnet
	for _, sn := range all {
		if len(ids) > 0 && !slices.Contains(ids, sn.SubnetID) {
			continue
		}
		if match(fs, map[string][]string{"default-for-az": {"true"}, "vpc-id": {sn.VpcID}, "subnet-id": {sn.SubnetID},
			"availability-zone": {sn.AvailabilityZone}}, nil) {
			out = append(out, sn)
		}
	}
	for _, id := range ids {
		if !slices.ContainsFunc(out, func(x xmlSubnet) bool { return x.SubnetID == id }) && !slices.ContainsFunc(all, func(x xmlSubnet) bool { return x.SubnetID == id }) {
			return nil, apiErr("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
		}
	}
	return &struct {
		RequestID string      `xml:"requestId"`
		Subnets   []xmlSubnet `xml:"subnetSet>item"`
	}{r.id, out}, nil
}

// Balancer is a snapshot of a load balancer of the fake, for tests.
type Balancer struct {
	Name, DNSName string
	Tags          map[string]string
	// Addr is the loopback address of its HTTP listener's HAProxy ("" without),
	// TLSAddr that of its HTTPS listener's.
	Addr, TLSAddr string
}

// Balancers returns the load balancers, in creation order.
func (s *Server) Balancers() []Balancer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Balancer
	for _, lb := range s.lbs {
		tags := map[string]string{}
		for k, v := range lb.tags {
			tags[k] = v
		}
		out = append(out, Balancer{lb.name, lb.dns, tags, lb.addr, lb.tlsAddr})
	}
	return out
}

// TargetGroups returns the names of the target groups.
func (s *Server) TargetGroups() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, tg := range s.tgs {
		out = append(out, tg.name)
	}
	return out
}
