// Package ec2test is an in-process fake of the AWS EC2 Query API, and of
// STS GetCallerIdentity, for tests: enough of EC2 for aws-sdk-go-v2's
// service/ec2 client to find an image, import a key pair, create a
// security group, and boot, inspect and terminate instances. A Launcher
// supplied by the test boots the machine behind each instance (a container
// in the end-to-end tests). It also serves IAM (iam.go), ELBv2's load
// balancers, each HTTP(S) listener optionally a real HAProxy (elbv2.go,
// haproxy.go), and ACM's certificates (acm.go), on the same URL.
//
// The fake has one account (123456789012), one region (us-east-1) with a
// default VPC, subnet and security group, and two public Debian 12 images:
//
//	ami-0debian12amd64  debian-12-amd64-20261101-1234  x86_64
//	ami-0debian12arm64  debian-12-arm64-20261101-1234  arm64
//
// both owned by 136693071363 (Debian's AWS account). Actions it does not
// implement fail with InvalidAction. Request signatures are not verified:
// a request only needs an AWS4-HMAC-SHA256 Authorization header.
package ec2test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Launcher boots the machine behind a launched instance (a container in the
// end-to-end tests). RunInstances calls Launch in a goroutine of its own
// per instance; ctx is canceled when the instance is terminated while
// pending, and at cleanup.
type Launcher interface {
	Launch(ctx context.Context, spec LaunchSpec) (Machine, error)
}

// LaunchSpec is what RunInstances asked for one instance.
type LaunchSpec struct {
	InstanceID, ImageID, InstanceType, KeyName string
	UserData                                   []byte // decoded from base64
	Tags                                       map[string]string
	KeyMaterial                                string // the OpenSSH public key of KeyName (from ImportKeyPair), "" if none
	HTTPTokensRequired                         bool   // MetadataOptions.HttpTokens == "required"
	InstanceProfile                            string // IAM instance profile name, "" if none
}

// Machine is a machine a Launcher booted. The fake calls Terminate once,
// on TerminateInstances or at cleanup; Console may be called from several
// goroutines at once, even as Terminate runs.
type Machine interface {
	PublicIP() string
	PrivateIP() string
	Console() []byte // console output so far (GetConsoleOutput returns it base64)
	Terminate() error
}

// Server is the fake: one account (Account = "123456789012"), one region
// (us-east-1). Point a client at URL (ec2.Options.BaseEndpoint).
type Server struct {
	URL     string
	Account string

	t        testing.TB
	launcher Launcher
	ctx      context.Context // canceled at cleanup; Launch runs under it
	bg       sync.WaitGroup  // launch and terminate goroutines

	mu        sync.Mutex
	calls     map[string]int
	images    []*image // fixed at New
	keys      []*keyPair
	groups    []*securityGroup
	instances []*instance
	tokens    map[string]*reservation // RunInstances by ClientToken
	roles     map[string]*role        // IAM, by name
	profiles  map[string]*profile     // IAM instance profiles, by name
	impaired  map[string]bool         // instances whose status checks fail (status.go)
	addresses []*address              // Elastic IPs (status.go)
	addrSeq   int
	elbState  // ELBv2 (elbv2.go)
}

const (
	ec2Version = "2016-11-15"
	ec2NS      = "http://ec2.amazonaws.com/doc/2016-11-15/"
	stsVersion = "2011-06-15"
	stsNS      = "https://sts.amazonaws.com/doc/2011-06-15/"
	iamVersion = "2010-05-08"
	iamNS      = "https://iam.amazonaws.com/doc/2010-05-08/"

	account       = "123456789012"
	region        = "us-east-1"
	zone          = "us-east-1a"
	defaultVPC    = "vpc-0ec2ec2ec2ec2ec21"
	defaultSubnet = "subnet-0ec2ec2ec2ec2ec22"
)

// New starts a fake on a loopback port until the test ends. Launcher l
// boots the instances; nil boots nothing and gives each instance made-up
// addresses. At cleanup the machines still running are terminated.
func New(t testing.TB, l Launcher) *Server {
	if l == nil {
		l = &nullLauncher{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		Account:  account,
		t:        t,
		launcher: l,
		ctx:      ctx,
		calls:    map[string]int{},
		images:   debianImages(),
		tokens:   map[string]*reservation{},
		roles:    map[string]*role{},
		profiles: map[string]*profile{},
	}
	s.groups = append(s.groups, defaultGroup())
	hs := httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = hs.URL
	t.Cleanup(func() {
		hs.Close()
		cancel()
		s.bg.Wait()
		for _, inst := range s.takeRunning() {
			if err := inst.machine.Terminate(); err != nil {
				t.Errorf("ec2test: terminate %s at cleanup: %v", inst.ID, err)
			}
		}
	})
	return s
}

// Calls reports how many requests of action (such as "RunInstances") the
// fake received, failed ones included.
func (s *Server) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[action]
}

// request is one API call.
type request struct {
	id     string // request ID
	action string
	form   url.Values
}

// apiError is an error answer of the API.
type apiError struct {
	status        int
	code, message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

// apiErr is an HTTP 400 error answer; the message follows EC2's wording.
func apiErr(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, message: fmt.Sprintf(format, args...)}
}

// handler answers an action with a response body (a struct whose fields
// are the children of <ActionResponse>) or an error.
type handler func(*Server, *request) (any, error)

var ec2Actions = map[string]handler{
	"DescribeImages":                (*Server).describeImages,
	"ImportKeyPair":                 (*Server).importKeyPair,
	"DescribeKeyPairs":              (*Server).describeKeyPairs,
	"DeleteKeyPair":                 (*Server).deleteKeyPair,
	"CreateSecurityGroup":           (*Server).createSecurityGroup,
	"DescribeSecurityGroups":        (*Server).describeSecurityGroups,
	"AuthorizeSecurityGroupIngress": (*Server).authorizeSecurityGroupIngress,
	"RevokeSecurityGroupIngress":    (*Server).revokeSecurityGroupIngress,
	"DeleteSecurityGroup":           (*Server).deleteSecurityGroup,
	"RunInstances":                  (*Server).runInstances,
	"DescribeInstances":             (*Server).describeInstances,
	"TerminateInstances":            (*Server).terminateInstances,
	"GetConsoleOutput":              (*Server).getConsoleOutput,
	"CreateTags":                    (*Server).createTags,
}

// serve answers one Query API request.
func (s *Server) serve(w http.ResponseWriter, hr *http.Request) {
	if t := hr.Header.Get("X-Amz-Target"); strings.HasPrefix(t, "CertificateManager.") {
		s.serveACM(w, hr, t) // ACM, a JSON API (acm.go)
		return
	}
	r := &request{id: requestID()}
	if err := hr.ParseForm(); err != nil {
		s.replyError(w, r, ec2Version, apiErr("MalformedQueryString", "%v", err))
		return
	}
	r.form = hr.Form
	r.action = r.form.Get("Action")
	version := r.form.Get("Version")
	s.mu.Lock()
	s.calls[r.action]++
	s.mu.Unlock()

	if !strings.HasPrefix(hr.Header.Get("Authorization"), "AWS4-HMAC-SHA256") {
		s.replyError(w, r, version, &apiError{status: http.StatusUnauthorized, code: "AuthFailure",
			message: "AWS was not able to validate the provided access credentials"})
		return
	}
	if r.action == "" {
		s.replyError(w, r, version, apiErr("MissingAction", "The request must contain the parameter Action"))
		return
	}
	var h handler
	ns := ec2NS
	switch version {
	case stsVersion:
		ns = stsNS
		if r.action == "GetCallerIdentity" {
			h = (*Server).getCallerIdentity
		}
	case iamVersion:
		ns = iamNS
		h = iamActions[r.action]
	case elbVersion:
		ns = elbNS
		h = elbActions[r.action]
	case "":
		s.replyError(w, r, version, apiErr("MissingParameter", "The request must contain the parameter Version"))
		return
	default:
		h = ec2Actions[r.action]
	}
	if h == nil {
		s.replyError(w, r, version, apiErr("InvalidAction", "The action %s is not valid for this web service.", r.action))
		return
	}
	if r.form.Get("DryRun") == "true" {
		s.replyError(w, r, version, &apiError{status: http.StatusPreconditionFailed, code: "DryRunOperation",
			message: "Request would have succeeded, but DryRun flag is set."})
		return
	}
	body, err := h(s, r)
	if err != nil {
		s.replyError(w, r, version, err)
		return
	}
	s.reply(w, xml.StartElement{Name: xml.Name{Space: ns, Local: r.action + "Response"}}, body)
}

// reply writes body as the XML element start.
func (s *Server) reply(w http.ResponseWriter, start xml.StartElement, body any) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).EncodeElement(body, start); err != nil {
		s.t.Errorf("ec2test: encode %s: %v", start.Name.Local, err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Write(buf.Bytes())
}

// replyError writes err the way EC2 does, or STS if version is STS's.
func (s *Server) replyError(w http.ResponseWriter, r *request, version string, err error) {
	e, ok := err.(*apiError)
	if !ok {
		e = &apiError{status: http.StatusInternalServerError, code: "InternalError", message: err.Error()}
	}
	type xmlError struct {
		Type    string `xml:"Type,omitempty"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	var body any
	start := xml.StartElement{Name: xml.Name{Local: "Response"}}
	if version == stsVersion || version == iamVersion || version == elbVersion {
		ns := stsNS
		switch version {
		case iamVersion:
			ns = iamNS
		case elbVersion:
			ns = elbNS
		}
		start = xml.StartElement{Name: xml.Name{Space: ns, Local: "ErrorResponse"}}
		typ := "Sender"
		if e.status >= 500 {
			typ = "Receiver"
		}
		body = struct {
			Error     xmlError `xml:"Error"`
			RequestID string   `xml:"RequestId"`
		}{xmlError{typ, e.code, e.message}, r.id}
	} else {
		body = struct {
			Errors    []xmlError `xml:"Errors>Error"`
			RequestID string     `xml:"RequestID"`
		}{[]xmlError{{Code: e.code, Message: e.message}}, r.id}
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	xml.NewEncoder(&buf).EncodeElement(body, start)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.status)
	w.Write(buf.Bytes())
}

// getCallerIdentity is STS GetCallerIdentity: an IAM user of the account.
func (s *Server) getCallerIdentity(r *request) (any, error) {
	type result struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	}
	return &struct {
		Result    result `xml:"GetCallerIdentityResult"`
		RequestID string `xml:"ResponseMetadata>RequestId"`
	}{result{"arn:aws:iam::" + s.Account + ":user/ec2test", "AIDAEC2TESTUSER000001", s.Account}, r.id}, nil
}

// createTags is CreateTags on instances, security groups and key pairs.
func (s *Server) createTags(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := list(r.form, "ResourceId")
	if len(ids) == 0 {
		return nil, apiErr("MissingParameter", "The request must contain the parameter resourceIdSet")
	}
	tags, err := tagList(r.form, "Tag")
	if err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		return nil, apiErr("MissingParameter", "The request must contain the parameter tagSet")
	}
	var targets []map[string]string
	for _, id := range ids {
		var m map[string]string
		switch {
		case strings.HasPrefix(id, "i-"):
			inst := s.instance(id)
			if inst == nil {
				return nil, apiErr("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
			}
			m = inst.Tags
		case strings.HasPrefix(id, "sg-"):
			g := s.groupByID(id)
			if g == nil {
				return nil, apiErr("InvalidGroup.NotFound", "The security group '%s' does not exist", id)
			}
			m = g.tags
		case strings.HasPrefix(id, "key-"):
			k := s.keyByID(id)
			if k == nil {
				return nil, apiErr("InvalidKeyPair.NotFound", "The key pair '%s' does not exist", id)
			}
			m = k.tags
		default:
			return nil, apiErr("InvalidID", "The ID '%s' is not valid", id)
		}
		targets = append(targets, m)
	}
	for _, m := range targets {
		for k, v := range tags {
			m[k] = v
		}
	}
	return &returnResponse{RequestID: r.id, Return: true}, nil
}

// returnResponse is the answer of actions that only say they succeeded.
type returnResponse struct {
	RequestID string `xml:"requestId"`
	Return    bool   `xml:"return"`
}

// The Query API's request parameters.

// members returns the prefixes prefix.1, prefix.2, ... of the members of
// the flattened list prefix in form, in index order.
func members(form url.Values, prefix string) []string {
	var idx []int
	for k := range form {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, ".")
		if i, err := strconv.Atoi(n); err == nil && i > 0 && !slices.Contains(idx, i) {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	out := make([]string, len(idx))
	for j, i := range idx {
		out[j] = prefix + "." + strconv.Itoa(i)
	}
	return out
}

// list returns the values of the flattened string list prefix.
func list(form url.Values, prefix string) []string {
	var out []string
	for _, p := range members(form, prefix) {
		out = append(out, form.Get(p))
	}
	return out
}

// tagList returns the tags prefix.N.Key/Value.
func tagList(form url.Values, prefix string) (map[string]string, error) {
	tags := map[string]string{}
	for _, p := range members(form, prefix) {
		k := form.Get(p + ".Key")
		switch {
		case k == "":
			return nil, apiErr("InvalidParameterValue", "Tag key cannot be empty")
		case len(k) > 128:
			return nil, apiErr("InvalidParameterValue", "Tag key exceeds the maximum length of 128 characters")
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			return nil, apiErr("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
		}
		tags[k] = form.Get(p + ".Value")
	}
	return tags, nil
}

// tagSpecs returns the tags of TagSpecification.N whose ResourceType is
// resourceType; the other types must be among also (accepted, ignored).
func tagSpecs(form url.Values, resourceType string, also ...string) (map[string]string, error) {
	tags := map[string]string{}
	for _, p := range members(form, "TagSpecification") {
		rt := form.Get(p + ".ResourceType")
		t, err := tagList(form, p+".Tag")
		if err != nil {
			return nil, err
		}
		switch {
		case rt == resourceType:
			for k, v := range t {
				tags[k] = v
			}
		case slices.Contains(also, rt):
		default:
			return nil, apiErr("InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", rt)
		}
	}
	return tags, nil
}

// filter is one Filter.N of a Describe action.
type filter struct {
	name   string
	values []string
}

// filters returns the Filter.N of form; each name must be a tag filter
// (tag:KEY, tag-key, tag-value) or one of known.
func filters(form url.Values, known ...string) ([]filter, error) {
	var fs []filter
	for _, p := range members(form, "Filter") {
		f := filter{name: form.Get(p + ".Name"), values: list(form, p+".Value")}
		if !strings.HasPrefix(f.name, "tag:") && f.name != "tag-key" && f.name != "tag-value" && !slices.Contains(known, f.name) {
			return nil, apiErr("InvalidParameterValue", "The filter '%s' is invalid", f.name)
		}
		fs = append(fs, f)
	}
	return fs, nil
}

// match reports whether a resource with these filterable fields and tags
// passes all filters: each filter needs one of its values (with wildcards
// * and ?) to match one of the resource's.
func match(fs []filter, fields map[string][]string, tags map[string]string) bool {
	for _, f := range fs {
		var have []string
		switch {
		case strings.HasPrefix(f.name, "tag:"):
			if v, ok := tags[f.name[len("tag:"):]]; ok {
				have = []string{v}
			}
		case f.name == "tag-key":
			for k := range tags {
				have = append(have, k)
			}
		case f.name == "tag-value":
			for _, v := range tags {
				have = append(have, v)
			}
		default:
			have = fields[f.name]
		}
		if !slices.ContainsFunc(f.values, func(pat string) bool {
			return slices.ContainsFunc(have, func(v string) bool { return glob(pat, v) })
		}) {
			return false
		}
	}
	return true
}

// glob matches s against pattern, in which * is any string and ? any one
// character.
func glob(pattern, s string) bool {
	p, v := []rune(pattern), []rune(s)
	// star is the position in p after the last *, next where in v its
	// match would end next.
	pi, vi, star, next := 0, 0, -1, 0
	for vi < len(v) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, next = pi+1, vi
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == v[vi]):
			pi++
			vi++
		case star >= 0:
			next++
			pi, vi = star, next
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// The XML of answers.

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

// tagSet is tags as a tagSet, sorted by key.
func tagSet(tags map[string]string) []xmlTag {
	out := make([]xmlTag, 0, len(tags))
	for k, v := range tags {
		out = append(out, xmlTag{k, v})
	}
	slices.SortFunc(out, func(a, b xmlTag) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// timestamp formats t the way EC2 does.
func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// newID is a resource ID like i-0123456789abcdef0: prefix, a dash and 17
// hexadecimal digits.
func newID(prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return prefix + "-0" + hex.EncodeToString(b)
}

// requestID is a request ID, a random UUID.
func requestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
