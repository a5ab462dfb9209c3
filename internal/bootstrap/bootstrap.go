package bootstrap

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/jecloud/jecloud/internal/globalstate"
	"github.com/jecloud/jecloud/internal/placement"
	"github.com/jecloud/jecloud/internal/remote"
	"golang.org/x/crypto/ssh"
)

// EC2 is what bootstrapping needs of an EC2 client (*ec2.Client has it).
type EC2 interface {
	DescribeImages(context.Context, *ec2.DescribeImagesInput, ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	CreateSecurityGroup(context.Context, *ec2.CreateSecurityGroupInput, ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error)
	AuthorizeSecurityGroupIngress(context.Context, *ec2.AuthorizeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	RevokeSecurityGroupIngress(context.Context, *ec2.RevokeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error)
	RunInstances(context.Context, *ec2.RunInstancesInput, ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	GetConsoleOutput(context.Context, *ec2.GetConsoleOutputInput, ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error)
	TerminateInstances(context.Context, *ec2.TerminateInstancesInput, ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	DeleteSecurityGroup(context.Context, *ec2.DeleteSecurityGroupInput, ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error)
}

// DebianOwner is the AWS account that publishes Debian's official images.
const DebianOwner = "136693071363"

// Options say what to make.
type Options struct {
	App, Env string
	Count    int // web servers the environment should have (default 1)
	// Role is the role Scale works on ("" is web). Ensure makes the
	// servers of every role the state document asks for.
	Role string
	// InstanceType defaults to t3.small; ImageID to the newest Debian 12
	// image of Arch (amd64, or arm64).
	InstanceType, ImageID, Arch string
	// SSHFrom are the CIDR blocks SSH is open to; Ports the TCP ports open
	// to everyone (the app's web ports).
	SSHFrom []string
	Ports   []int32
	// AuthorizedKey is the user's public key; Agent the path of the
	// jeagent binary to install (linux, the instances' architecture), and
	// Tick that of the jeagent-tick to install beside it ("": none; the
	// timer then runs jeagent itself).
	AuthorizedKey, Agent, Tick string
	SSH                        remote.SSHOptions
	Log                        io.Writer
	// IAM, with StateBucket, gives the servers a role of their own
	// (RolePolicy: their bundles and document, nothing else), which
	// deploys through S3 use. Nil: no role.
	IAM         IAM
	StateBucket string
	// Backups, if set, adds to that role the rights to this environment's
	// backups in their bucket, and no others (RolePolicy).
	Backups *Backups
	// Poll is how often the instance's state and console are read
	// (default 3 s); Timeout bounds the making of one server (15 min).
	Poll, Timeout time.Duration
}

func (o *Options) defaults() {
	if o.Count <= 0 {
		o.Count = 1
	}
	if o.InstanceType == "" {
		o.InstanceType = "t3.small"
	}
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	if o.Poll <= 0 {
		o.Poll = 3 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Minute
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Tags put on everything JeCloud makes; `jepush destroy` removes only what has them.
const (
	TagApp    = "jecloud:app"
	TagEnv    = "jecloud:env"
	TagServer = "jecloud:server"
	TagRole   = "jecloud:role"
)

// serverName names the n-th server of a role: APP-ENV-N for web servers,
// APP-ENV-ROLE-N for the others.
func serverName(app, env, role string, n int) string {
	if role == placement.Web {
		return fmt.Sprintf("%s-%s-%d", app, env, n)
	}
	return fmt.Sprintf("%s-%s-%s-%d", app, env, role, n)
}

// wanted returns how many servers of each role the environment should
// have: web from desired_servers (else Count), the others from desired_roles.
func wanted(e *globalstate.Env, count int) map[string]int {
	want := map[string]int{placement.Web: count}
	if e.DesiredServers > 0 {
		want[placement.Web] = e.DesiredServers
	}
	for r, n := range e.DesiredRoles {
		if r != placement.Web {
			want[r] = n
		}
	}
	return want
}

func countRole(e *globalstate.Env, role string) int {
	n := 0
	for i := range e.Servers {
		if e.Servers[i].RoleOrWeb() == role {
			n++
		}
	}
	return n
}

// Ensure returns the environment's servers, making the missing ones (or
// finishing those an interrupted run left half made).
func Ensure(ctx context.Context, api EC2, st *globalstate.Store, o Options) ([]globalstate.Server, error) {
	o.defaults()
	e, err := st.Update(ctx, o.App, o.Env, func(e *globalstate.Env) error {
		want := wanted(e, o.Count)
		roles := make([]string, 0, len(want))
		for r := range want {
			roles = append(roles, r)
		}
		sort.Strings(roles)
		for _, r := range roles {
			for n := 1; countRole(e, r) < want[r]; n++ {
				name := serverName(o.App, o.Env, r, n)
				if e.Server(name) != nil {
					continue
				}
				e.Servers = append(e.Servers, globalstate.Server{Name: name, Role: r, User: DeployUser,
					Bootstrap: &globalstate.Bootstrap{Step: "launching", ClientToken: token(), Started: time.Now().UTC().Truncate(time.Second)}})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	b := &booter{api: api, st: st, o: o}
	// The firewall follows jecloud.toml on every push, also when no server
	// is made: what ssh_from and ports no longer list is revoked.
	for _, r := range e.Roles() {
		if err := b.firewall(ctx, r); err != nil {
			return nil, err
		}
	}
	// The servers' role gets today's policy (servers made before issue #17
	// could write the whole document), and every server made by jepush
	// learns, from the document only jepush writes, where it reports.
	if e.HasInstances() {
		if _, err := b.role(ctx); err != nil {
			return nil, err
		}
		if b.roleID != "" {
			if e, err = st.Update(ctx, o.App, o.Env, func(e *globalstate.Env) error {
				for i := range e.Servers {
					if s := &e.Servers[i]; s.Observation == "" && s.InstanceID != "" {
						s.Observation = b.observation(s.InstanceID)
					}
				}
				return nil
			}); err != nil {
				return nil, err
			}
		}
	}
	for _, s := range e.Servers {
		if s.Ready() {
			continue
		}
		if err := b.make(ctx, s); err != nil {
			st.Update(ctx, o.App, o.Env, func(e *globalstate.Env) error {
				if r := e.Server(s.Name); r != nil && r.Bootstrap != nil {
					r.Bootstrap.Error = err.Error()
				}
				return nil
			})
			return nil, fmt.Errorf("server %s of %s/%s: %w (run jepush again to resume)", s.Name, o.App, o.Env, err)
		}
	}
	e, _, err = st.Get(ctx, o.App, o.Env)
	if err != nil {
		return nil, err
	}
	return e.Servers, nil
}

func token() string {
	var b [16]byte
	rand.Read(b[:])
	return "jecloud-" + hex.EncodeToString(b[:])
}

type booter struct {
	api      EC2
	st       *globalstate.Store
	o        Options
	groupIDs map[string]string // by role
	imageID  string
	profile  string
	roleID   string // the servers' role's RoleId (AROA...), once role ran
}

// observation is where the server on instance id reports, which its
// role's policy lets it write: its aws:userid, role-id:instance-id.
func (b *booter) observation(instanceID string) string {
	if b.roleID == "" || instanceID == "" {
		return ""
	}
	return globalstate.ObservationKey(b.o.App, b.o.Env, b.roleID+":"+instanceID)
}

// record applies fn to the server's entry in the global state.
func (b *booter) record(ctx context.Context, name string, fn func(*globalstate.Server)) error {
	_, err := b.st.Update(ctx, b.o.App, b.o.Env, func(e *globalstate.Env) error {
		s := e.Server(name)
		if s == nil {
			return fmt.Errorf("server %s was removed from %s while it was being made", name, b.st.URL(b.o.App, b.o.Env))
		}
		fn(s)
		return nil
	})
	return err
}

// make carries one server through the steps it has not done yet.
func (b *booter) make(ctx context.Context, s globalstate.Server) error {
	ctx, cancel := context.WithTimeout(ctx, b.o.Timeout)
	defer cancel()
	log := b.o.Log
	agent, err := os.ReadFile(b.o.Agent)
	if err != nil {
		return fmt.Errorf("jeagent to install: %w (set agent_binary for this environment in jecloud.toml, or JEPUSH_AGENT_BINARY)", err)
	}
	var tick []byte
	if b.o.Tick != "" {
		if tick, err = os.ReadFile(b.o.Tick); err != nil {
			return fmt.Errorf("jeagent-tick to install: %w", err)
		}
	}
	if s.InstanceID == "" {
		id, err := b.launch(ctx, s, agent, tick)
		if err != nil {
			return err
		}
		s.InstanceID = id
		if err := b.record(ctx, s.Name, func(r *globalstate.Server) {
			r.InstanceID, r.Bootstrap.Step = id, "booting"
			if o := b.observation(id); o != "" {
				r.Observation = o
			}
		}); err != nil {
			return err
		}
	}
	if s.Host == "" || len(s.HostKeys) == 0 {
		fmt.Fprintf(log, "%s: waiting for %s to boot\n", s.Name, s.InstanceID)
		host, err := b.running(ctx, s.InstanceID)
		if err != nil {
			return err
		}
		keys, err := b.hostKeys(ctx, s.InstanceID)
		if err != nil {
			return err
		}
		var lines []string
		for _, k := range keys {
			lines = append(lines, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))))
			fmt.Fprintf(log, "%s: host key %s %s (from the console)\n", s.Name, k.Type(), ssh.FingerprintSHA256(k))
		}
		s.Host, s.HostKeys = host, lines
		if err := b.record(ctx, s.Name, func(r *globalstate.Server) { r.Host, r.HostKeys, r.Bootstrap.Step = host, lines, "installing" }); err != nil {
			return err
		}
	}
	var keys []ssh.PublicKey
	for _, l := range s.HostKeys {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(l))
		if err != nil {
			return fmt.Errorf("host key %q in %s: %w", l, b.st.URL(b.o.App, b.o.Env), err)
		}
		keys = append(keys, k)
	}
	if err := RecordHostKeys(b.o.SSH.KnownHostsFile(), s.Host, keys, "jecloud:"+b.o.App+"/"+b.o.Env+"/"+s.Name); err != nil {
		return err
	}
	if err := b.install(ctx, s, agent, tick); err != nil {
		return err
	}
	fmt.Fprintf(log, "%s: ready at %s@%s\n", s.Name, s.User, s.Host)
	return b.record(ctx, s.Name, func(r *globalstate.Server) { r.Bootstrap = nil })
}

// launch starts the instance, unless an earlier run already did with this
// server's client token.
func (b *booter) launch(ctx context.Context, s globalstate.Server, agent, tick []byte) (string, error) {
	tok := s.Bootstrap.ClientToken
	out, err := b.api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("client-token"), Values: []string{tok}}}})
	if err != nil {
		return "", fmt.Errorf("looking for an instance launched earlier: %w", err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if in.State != nil && in.State.Name != types.InstanceStateNameTerminated && in.State.Name != types.InstanceStateNameShuttingDown {
				fmt.Fprintf(b.o.Log, "%s: found %s, launched by an earlier run\n", s.Name, aws.ToString(in.InstanceId))
				return aws.ToString(in.InstanceId), nil
			}
		}
	}
	group, err := b.group(ctx, s.RoleOrWeb())
	if err != nil {
		return "", err
	}
	image, err := b.image(ctx)
	if err != nil {
		return "", err
	}
	uo := UserDataOptions{App: b.o.App, Env: b.o.Env, Server: s.Name, AuthorizedKey: b.o.AuthorizedKey, AgentSHA256: sha256Hex(agent)}
	if tick != nil {
		uo.TickSHA256 = sha256Hex(tick)
	}
	ud, err := UserData(uo)
	if err != nil {
		return "", err
	}
	tags := []types.Tag{
		{Key: aws.String("Name"), Value: aws.String(s.Name)},
		{Key: aws.String(TagApp), Value: aws.String(b.o.App)},
		{Key: aws.String(TagEnv), Value: aws.String(b.o.Env)},
		{Key: aws.String(TagServer), Value: aws.String(s.Name)},
		{Key: aws.String(TagRole), Value: aws.String(s.RoleOrWeb())},
	}
	profile, err := b.role(ctx)
	if err != nil {
		return "", err
	}
	in := &ec2.RunInstancesInput{
		ImageId: aws.String(image), InstanceType: types.InstanceType(b.o.InstanceType),
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ClientToken: aws.String(tok),
		SecurityGroupIds: []string{group},
		UserData:         aws.String(base64.StdEncoding.EncodeToString(ud)),
		MetadataOptions: &types.InstanceMetadataOptionsRequest{
			HttpTokens: types.HttpTokensStateRequired, HttpEndpoint: types.InstanceMetadataEndpointStateEnabled,
		},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: tags}},
	}
	if profile != "" {
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: aws.String(profile)}
	}
	deadline := time.Now().Add(profileWait)
	run, err := b.api.RunInstances(ctx, in)
	for err != nil && profileNotYet(err) && time.Now().Before(deadline) {
		if err := sleep(ctx, b.o.Poll); err != nil {
			return "", err
		}
		run, err = b.api.RunInstances(ctx, in)
	}
	if err != nil {
		return "", fmt.Errorf("launching %s (%s, %s): %w", s.Name, b.o.InstanceType, image, err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	fmt.Fprintf(b.o.Log, "%s: launched %s (%s, %s)\n", s.Name, id, b.o.InstanceType, image)
	return id, nil
}

// GroupName is the security group of an environment's servers of role:
// jecloud-APP_ENV for web servers, jecloud-APP_ENV.ROLE for the others.
// No APP or ENV has a '_' or a dot (security group names may), so no two
// environments' (or roles') groups share a name (issue #17).
func GroupName(app, env, role string) string {
	if role == "" || role == placement.Web {
		return "jecloud-" + app + "_" + env
	}
	return "jecloud-" + app + "_" + env + "." + role
}

// legacyGroupName is the name versions before issue #17 gave the group:
// jecloud-APP-ENV (.ROLE), which (a, b-c) and (a-b, c) shared.
func legacyGroupName(app, env, role string) string {
	if role == "" || role == placement.Web {
		return LegacyName(app, env)
	}
	return LegacyName(app, env) + "." + role
}

// findGroup returns the environment's security group of role and its
// name: GroupName's (refused if tagged for another environment: someone
// else's), else legacyGroupName's if tagged for this environment (made
// before issue #17: it is found and managed still), else nil and
// GroupName, to be made.
func (b *booter) findGroup(ctx context.Context, role string) (string, *types.SecurityGroup, error) {
	name, old := GroupName(b.o.App, b.o.Env, role), legacyGroupName(b.o.App, b.o.Env, role)
	out, err := b.api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{{Name: aws.String("group-name"), Values: []string{name, old}}}})
	if err != nil {
		return "", nil, fmt.Errorf("security group %s: %w", name, err)
	}
	var legacy *types.SecurityGroup
	for i, g := range out.SecurityGroups {
		mine := tag(g.Tags, TagApp) == b.o.App && tag(g.Tags, TagEnv) == b.o.Env
		switch aws.ToString(g.GroupName) {
		case name:
			if !mine {
				return "", nil, fmt.Errorf("security group %s (%s), which the %s servers of %s/%s should have, already exists and is not tagged %s=%s, %s=%s: it is someone else's (rename or delete it)",
					name, aws.ToString(g.GroupId), role, b.o.App, b.o.Env, TagApp, b.o.App, TagEnv, b.o.Env)
			}
			return name, &out.SecurityGroups[i], nil
		case old:
			if mine {
				legacy = &out.SecurityGroups[i]
			}
		}
	}
	if legacy != nil {
		return old, legacy, nil
	}
	return name, nil, nil
}

// group returns the security group of the environment's servers of role,
// made if missing, with SSH open to SSHFrom and, for web servers, Ports
// open to everyone (servers of other roles serve no one).
func (b *booter) group(ctx context.Context, role string) (string, error) {
	if id := b.groupIDs[role]; id != "" {
		return id, nil
	}
	name, g, err := b.findGroup(ctx, role)
	if err != nil {
		return "", err
	}
	var id string
	var have []types.IpPermission
	if g != nil {
		id = aws.ToString(g.GroupId)
		have = g.IpPermissions
	} else {
		cr, err := b.api.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
			GroupName: aws.String(name), Description: aws.String("JeCloud " + b.o.App + "/" + b.o.Env + " " + role + " servers"),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup, Tags: []types.Tag{
				{Key: aws.String(TagApp), Value: aws.String(b.o.App)}, {Key: aws.String(TagEnv), Value: aws.String(b.o.Env)},
				{Key: aws.String(TagRole), Value: aws.String(role)}}}},
		})
		if err != nil && !isCode(err, "InvalidGroup.Duplicate") {
			return "", fmt.Errorf("creating security group %s: %w", name, err)
		}
		if err != nil { // made meanwhile by another run
			return b.group(ctx, role)
		}
		id = aws.ToString(cr.GroupId)
		fmt.Fprintf(b.o.Log, "created security group %s (%s)\n", name, id)
	}
	if err := b.reconcile(ctx, name, id, role, have); err != nil {
		return "", err
	}
	if b.groupIDs == nil {
		b.groupIDs = map[string]string{}
	}
	b.groupIDs[role] = id
	return id, nil
}

// firewall reconciles the rules of the role's security group, if there
// is one (group makes it when a server is launched).
func (b *booter) firewall(ctx context.Context, role string) error {
	name, g, err := b.findGroup(ctx, role)
	if err != nil || g == nil {
		return err
	}
	if err := b.reconcile(ctx, name, aws.ToString(g.GroupId), role, g.IpPermissions); err != nil {
		return err
	}
	if b.groupIDs == nil {
		b.groupIDs = map[string]string{}
	}
	b.groupIDs[role] = aws.ToString(g.GroupId)
	return nil
}

// reconcile makes the group's ingress rules exactly those jecloud.toml
// lists: SSH (22) from each of SSHFrom and, for web servers, each of
// Ports from everywhere. What is missing is authorized; everything else
// (an address dropped from ssh_from, a port dropped from ports, a rule
// added by hand) is revoked, so that narrowing the config narrows the
// firewall.
func (b *booter) reconcile(ctx context.Context, name, id, role string, have []types.IpPermission) error {
	want := map[string]bool{} // ruleKey
	var add []types.IpPermission
	ssh := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22)}
	for _, c := range b.o.SSHFrom {
		c = canonicalCIDR(c)
		if !want[ruleKey("tcp", 22, 22, c)] {
			want[ruleKey("tcp", 22, 22, c)] = true
			ssh.IpRanges = append(ssh.IpRanges, types.IpRange{CidrIp: aws.String(c), Description: aws.String("SSH for jepush")})
		}
	}
	add = append(add, ssh)
	if role == placement.Web {
		for _, p := range b.o.Ports {
			if !want[ruleKey("tcp", p, p, "0.0.0.0/0")] {
				want[ruleKey("tcp", p, p, "0.0.0.0/0")] = true
				add = append(add, types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(p), ToPort: aws.Int32(p),
					IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}})
			}
		}
	}
	there := map[string]bool{}
	var revoke []types.IpPermission
	for _, p := range have {
		proto, from, to := aws.ToString(p.IpProtocol), aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort)
		x := types.IpPermission{IpProtocol: p.IpProtocol, FromPort: p.FromPort, ToPort: p.ToPort}
		for _, r := range p.IpRanges {
			k := ruleKey(proto, from, to, canonicalCIDR(aws.ToString(r.CidrIp)))
			there[k] = true
			if !want[k] {
				x.IpRanges = append(x.IpRanges, types.IpRange{CidrIp: r.CidrIp})
			}
		}
		for _, r := range p.Ipv6Ranges {
			x.Ipv6Ranges = append(x.Ipv6Ranges, types.Ipv6Range{CidrIpv6: r.CidrIpv6})
		}
		for _, g := range p.UserIdGroupPairs {
			x.UserIdGroupPairs = append(x.UserIdGroupPairs, types.UserIdGroupPair{GroupId: g.GroupId})
		}
		for _, pl := range p.PrefixListIds {
			x.PrefixListIds = append(x.PrefixListIds, types.PrefixListId{PrefixListId: pl.PrefixListId})
		}
		if len(x.IpRanges)+len(x.Ipv6Ranges)+len(x.UserIdGroupPairs)+len(x.PrefixListIds) > 0 {
			revoke = append(revoke, x)
		}
	}
	for _, p := range add {
		var missing []types.IpRange
		for _, r := range p.IpRanges {
			if !there[ruleKey("tcp", aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort), aws.ToString(r.CidrIp))] {
				missing = append(missing, r)
			}
		}
		if len(missing) == 0 {
			continue
		}
		p.IpRanges = missing
		_, err := b.api.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: []types.IpPermission{p}})
		if err != nil && !isCode(err, "InvalidPermission.Duplicate") {
			return fmt.Errorf("opening port %d in %s: %w", aws.ToInt32(p.FromPort), name, err)
		}
	}
	for _, p := range revoke {
		_, err := b.api.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: []types.IpPermission{p}})
		if err != nil && !isCode(err, "InvalidPermission.NotFound") {
			return fmt.Errorf("revoking %s in %s: %w", describePerm(p), name, err)
		}
		fmt.Fprintf(b.o.Log, "security group %s: revoked %s (not in jecloud.toml)\n", name, describePerm(p))
	}
	return nil
}

func ruleKey(proto string, from, to int32, cidr string) string {
	return fmt.Sprintf("%s|%d|%d|%s", proto, from, to, cidr)
}

// canonicalCIDR is c as EC2 shows it (203.0.113.7 is 203.0.113.7/32).
func canonicalCIDR(c string) string {
	if p, err := netip.ParsePrefix(c); err == nil {
		return p.String()
	}
	if a, err := netip.ParseAddr(c); err == nil {
		return netip.PrefixFrom(a, a.BitLen()).String()
	}
	return c
}

func describePerm(p types.IpPermission) string {
	var from []string
	for _, r := range p.IpRanges {
		from = append(from, aws.ToString(r.CidrIp))
	}
	for _, r := range p.Ipv6Ranges {
		from = append(from, aws.ToString(r.CidrIpv6))
	}
	for _, g := range p.UserIdGroupPairs {
		from = append(from, aws.ToString(g.GroupId))
	}
	for _, pl := range p.PrefixListIds {
		from = append(from, aws.ToString(pl.PrefixListId))
	}
	ports := fmt.Sprintf("port %d", aws.ToInt32(p.FromPort))
	if aws.ToInt32(p.FromPort) != aws.ToInt32(p.ToPort) {
		ports = fmt.Sprintf("ports %d-%d", aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort))
	}
	return aws.ToString(p.IpProtocol) + " " + ports + " from " + strings.Join(from, ", ")
}

// image returns ImageID, else the newest Debian 12 image for Arch.
func (b *booter) image(ctx context.Context) (string, error) {
	if b.o.ImageID != "" {
		return b.o.ImageID, nil
	}
	if b.imageID != "" {
		return b.imageID, nil
	}
	pattern := "debian-12-" + b.o.Arch + "-*"
	out, err := b.api.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{DebianOwner}, Filters: []types.Filter{
		{Name: aws.String("name"), Values: []string{pattern}}, {Name: aws.String("state"), Values: []string{"available"}}}})
	if err != nil {
		return "", fmt.Errorf("looking up Debian's images: %w", err)
	}
	imgs := out.Images
	if len(imgs) == 0 {
		return "", fmt.Errorf("no image named %s from Debian (%s) in this region: set image = \"ami-...\" for this environment in jecloud.toml", pattern, DebianOwner)
	}
	sort.Slice(imgs, func(i, j int) bool { return aws.ToString(imgs[i].CreationDate) > aws.ToString(imgs[j].CreationDate) })
	b.imageID = aws.ToString(imgs[0].ImageId)
	return b.imageID, nil
}

// running waits until the instance runs and returns its public address
// (its private one when it has none).
func (b *booter) running(ctx context.Context, id string) (string, error) {
	for {
		out, err := b.api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil && !isCode(err, "InvalidInstanceID.NotFound") { // eventual consistency right after launch
			return "", fmt.Errorf("describing %s: %w", id, err)
		}
		if err == nil && len(out.Reservations) > 0 && len(out.Reservations[0].Instances) > 0 {
			in := out.Reservations[0].Instances[0]
			switch in.State.Name {
			case types.InstanceStateNameRunning:
				if ip := aws.ToString(in.PublicIpAddress); ip != "" {
					return ip, nil
				}
				if ip := aws.ToString(in.PrivateIpAddress); ip != "" {
					return ip, nil
				}
			case types.InstanceStateNameTerminated, types.InstanceStateNameShuttingDown, types.InstanceStateNameStopped:
				reason := ""
				if in.StateReason != nil {
					reason = ": " + aws.ToString(in.StateReason.Message)
				}
				return "", fmt.Errorf("instance %s is %s%s", id, in.State.Name, reason)
			}
		}
		if err := sleep(ctx, b.o.Poll); err != nil {
			return "", fmt.Errorf("instance %s does not run: %w", id, err)
		}
	}
}

// hostKeys waits until cloud-init has printed the host keys on the console.
func (b *booter) hostKeys(ctx context.Context, id string) ([]ssh.PublicKey, error) {
	for {
		out, err := b.api.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id), Latest: aws.Bool(true)})
		if err != nil {
			return nil, fmt.Errorf("console of %s: %w", id, err)
		}
		text, _ := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
		keys, err := HostKeysFromConsole(string(text))
		if err == nil {
			return keys, nil
		}
		if err := sleep(ctx, b.o.Poll); err != nil {
			return nil, fmt.Errorf("the console of %s never showed its SSH host keys (cloud-init prints them when it is done): %w", id, err)
		}
	}
}

// install uploads jeagent (and jeagent-tick, if any) over SSH (the host key
// checked against the keys from the console) and waits until the server
// has installed and set it up.
func (b *booter) install(ctx context.Context, s globalstate.Server, agent, tick []byte) error {
	t := remote.Target{Dest: s.User + "@" + s.Host}
	var last error
	for {
		last = b.tryInstall(ctx, t, agent, tick)
		if last == nil {
			return nil
		}
		var he *remote.HostKeyError
		if errors.As(last, &he) {
			return last // never retried: someone else answers
		}
		if err := sleep(ctx, b.o.Poll); err != nil {
			return fmt.Errorf("installing jeagent on %s: %w (last: %v)", s.Host, err, last)
		}
	}
}

func (b *booter) tryInstall(ctx context.Context, t remote.Target, agent, tick []byte) error {
	c, err := remote.DialSSH(ctx, t, b.o.SSH)
	if err != nil {
		return err
	}
	defer c.Close()
	var out bytes.Buffer
	// Ready already (a resumed run): nothing to upload.
	if c.Shell(ctx, "test -e "+Ready, nil, &out, &out) == nil {
		return nil
	}
	// The tick first: the server installs both once jeagent is there.
	if tick != nil {
		if err := c.Shell(ctx, "cat > "+TickUpload+".tmp && mv "+TickUpload+".tmp "+TickUpload, bytes.NewReader(tick), &out, &out); err != nil {
			return fmt.Errorf("uploading jeagent-tick: %w: %s", err, out.String())
		}
	}
	if err := c.Shell(ctx, "cat > "+Upload+".tmp && mv "+Upload+".tmp "+Upload, bytes.NewReader(agent), &out, &out); err != nil {
		return fmt.Errorf("uploading jeagent: %w: %s", err, out.String())
	}
	what := fmt.Sprintf("jeagent uploaded (%d bytes)", len(agent))
	if tick != nil {
		what = fmt.Sprintf("jeagent and jeagent-tick uploaded (%d and %d bytes)", len(agent), len(tick))
	}
	fmt.Fprintf(b.o.Log, "%s: %s; waiting for them to be installed\n", t.Dest, what)
	for {
		if c.Shell(ctx, "test -e "+Ready, nil, &out, &out) == nil {
			return nil
		}
		if err := sleep(ctx, b.o.Poll); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}
