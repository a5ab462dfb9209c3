package ec2test_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"golang.org/x/crypto/ssh"

	"github.com/jecloud/jecloud/internal/ec2test"
)

const (
	amd64Image = "ami-0debian12amd64"
	arm64Image = "ami-0debian12arm64"
	publicIP   = "203.0.113.10"
	privateIP  = "172.31.5.6"
	console    = "[    0.000000] Linux version 6.1.0-27-cloud-amd64\ncloud-init: finished\n"
)

// launcher is a fake Launcher: its machines are addresses and a console.
type launcher struct {
	mu       sync.Mutex
	specs    []ec2test.LaunchSpec
	machines []*machine
	err      error         // Launch fails with it
	gate     chan struct{} // if not nil, Launch waits for it to close
}

func (l *launcher) Launch(ctx context.Context, spec ec2test.LaunchSpec) (ec2test.Machine, error) {
	l.mu.Lock()
	l.specs = append(l.specs, spec)
	gate, err := l.gate, l.err
	l.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	m := &machine{id: spec.InstanceID}
	l.mu.Lock()
	l.machines = append(l.machines, m)
	l.mu.Unlock()
	return m, nil
}

func (l *launcher) launched() ([]ec2test.LaunchSpec, []*machine) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.specs), slices.Clone(l.machines)
}

type machine struct {
	id         string
	terminated atomic.Int32
}

func (m *machine) PublicIP() string  { return publicIP }
func (m *machine) PrivateIP() string { return privateIP }
func (m *machine) Console() []byte   { return []byte(console) }
func (m *machine) Terminate() error  { m.terminated.Add(1); return nil }

func awsConfig(t *testing.T) aws.Config {
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIAEC2TEST", "secret", "")))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// start runs a fake with launcher l and returns it with a client.
func start(t *testing.T, l ec2test.Launcher) (*ec2test.Server, *ec2.Client) {
	srv := ec2test.New(t, l)
	c := ec2.NewFromConfig(awsConfig(t), func(o *ec2.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	return srv, c
}

// code is the API error code of err, "" if none.
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return "not an API error: " + err.Error()
	}
	return ""
}

func fastRunning(o *ec2.InstanceRunningWaiterOptions) {
	o.MinDelay, o.MaxDelay = 5*time.Millisecond, 50*time.Millisecond
}

func fastTerminated(o *ec2.InstanceTerminatedWaiterOptions) {
	o.MinDelay, o.MaxDelay = 5*time.Millisecond, 50*time.Millisecond
}

// waitRunning waits for instance id to run and returns it.
func waitRunning(t *testing.T, c *ec2.Client, id string) types.Instance {
	t.Helper()
	out, err := ec2.NewInstanceRunningWaiter(c, fastRunning).WaitForOutput(context.Background(),
		&ec2.DescribeInstancesInput{InstanceIds: []string{id}}, 5*time.Second)
	if err != nil {
		t.Fatalf("wait for %s to run: %v", id, err)
	}
	return out.Reservations[0].Instances[0]
}

// run launches one Debian amd64 instance.
func run(t *testing.T, c *ec2.Client, edit func(*ec2.RunInstancesInput)) types.Instance {
	t.Helper()
	in := &ec2.RunInstancesInput{ImageId: aws.String(amd64Image), InstanceType: types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}
	if edit != nil {
		edit(in)
	}
	out, err := c.RunInstances(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Instances) != 1 {
		t.Fatalf("RunInstances launched %d instances, want 1", len(out.Instances))
	}
	return out.Instances[0]
}

func instanceTags(tags map[string]string) []types.TagSpecification {
	return []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: sdkTags(tags)}}
}

func sdkTags(tags map[string]string) []types.Tag {
	var out []types.Tag
	for k, v := range tags {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return out
}

func tagMap(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func ed25519Key(t *testing.T) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " test@ec2test"
}

func TestDescribeImages(t *testing.T) {
	_, c := start(t, nil)
	debian := []string{"136693071363"}
	filter := func(name string, values ...string) types.Filter {
		return types.Filter{Name: aws.String(name), Values: values}
	}
	for _, tc := range []struct {
		name string
		in   ec2.DescribeImagesInput
		want []string // image IDs
		code string
	}{
		{"owner", ec2.DescribeImagesInput{Owners: debian}, []string{amd64Image, arm64Image}, ""},
		{"name wildcard", ec2.DescribeImagesInput{Owners: debian, Filters: []types.Filter{filter("name", "debian-12-amd64-*")}}, []string{amd64Image}, ""},
		{"question mark", ec2.DescribeImagesInput{Filters: []types.Filter{filter("name", "debian-1?-arm64-*")}}, []string{arm64Image}, ""},
		{"architecture", ec2.DescribeImagesInput{Owners: debian, Filters: []types.Filter{filter("name", "debian-12-*"), filter("architecture", "arm64")}}, []string{arm64Image}, ""},
		{"values are ORed", ec2.DescribeImagesInput{Filters: []types.Filter{filter("architecture", "arm64", "x86_64")}}, []string{amd64Image, arm64Image}, ""},
		{"no match", ec2.DescribeImagesInput{Owners: debian, Filters: []types.Filter{filter("name", "debian-11-*")}}, nil, ""},
		{"self", ec2.DescribeImagesInput{Owners: []string{"self"}}, nil, ""},
		{"by ID", ec2.DescribeImagesInput{ImageIds: []string{arm64Image}}, []string{arm64Image}, ""},
		{"unknown ID", ec2.DescribeImagesInput{ImageIds: []string{"ami-0123456789abcdef0"}}, nil, "InvalidAMIID.NotFound"},
		{"bad filter", ec2.DescribeImagesInput{Filters: []types.Filter{filter("colour", "blue")}}, nil, "InvalidParameterValue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.DescribeImages(context.Background(), &tc.in)
			if code(err) != tc.code {
				t.Fatalf("error %v, want code %q", err, tc.code)
			}
			if err != nil {
				return
			}
			var got []string
			for _, img := range out.Images {
				got = append(got, aws.ToString(img.ImageId))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("images %v, want %v", got, tc.want)
			}
		})
	}

	out, err := c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{amd64Image}})
	if err != nil {
		t.Fatal(err)
	}
	img := out.Images[0]
	if aws.ToString(img.Name) != "debian-12-amd64-20261101-1234" || img.Architecture != types.ArchitectureValuesX8664 ||
		aws.ToString(img.OwnerId) != "136693071363" || img.State != types.ImageStateAvailable ||
		!strings.HasPrefix(aws.ToString(img.CreationDate), "2026-11-01T") {
		t.Errorf("image %+v", img)
	}
}

func TestKeyPairs(t *testing.T) {
	_, c := start(t, nil)
	ctx := context.Background()
	pub := ed25519Key(t)
	imp, err := c.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String("deploy"), PublicKeyMaterial: []byte(pub + "\n"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeKeyPair, Tags: sdkTags(map[string]string{"app": "jecloud"})}}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(aws.ToString(imp.KeyPairId), "key-") || aws.ToString(imp.KeyFingerprint) == "" || tagMap(imp.Tags)["app"] != "jecloud" {
		t.Errorf("ImportKeyPair: %+v", imp)
	}

	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	sshRSA, err := ssh.NewPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	imp, err = c.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String("old"), PublicKeyMaterial: ssh.MarshalAuthorizedKey(sshRSA)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(imp.KeyFingerprint), strings.TrimPrefix(ssh.FingerprintLegacyMD5(sshRSA), "MD5:"); got != want {
		t.Errorf("RSA fingerprint %s, want %s", got, want)
	}

	for _, tc := range []struct {
		name, key, material, code string
	}{
		{"duplicate", "deploy", pub, "InvalidKeyPair.Duplicate"},
		{"not a key", "bad", "hello", "InvalidKey.Format"},
	} {
		t.Run("import "+tc.name, func(t *testing.T) {
			_, err := c.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String(tc.key), PublicKeyMaterial: []byte(tc.material)})
			if code(err) != tc.code {
				t.Errorf("error %v, want code %s", err, tc.code)
			}
		})
	}

	for _, tc := range []struct {
		name string
		in   ec2.DescribeKeyPairsInput
		want []string
		code string
	}{
		{"all", ec2.DescribeKeyPairsInput{}, []string{"deploy", "old"}, ""},
		{"by name", ec2.DescribeKeyPairsInput{KeyNames: []string{"deploy"}}, []string{"deploy"}, ""},
		{"missing name", ec2.DescribeKeyPairsInput{KeyNames: []string{"deploy", "nope"}}, nil, "InvalidKeyPair.NotFound"},
		{"tag", ec2.DescribeKeyPairsInput{Filters: []types.Filter{{Name: aws.String("tag:app"), Values: []string{"jecloud"}}}}, []string{"deploy"}, ""},
		{"tag mismatch", ec2.DescribeKeyPairsInput{Filters: []types.Filter{{Name: aws.String("tag:app"), Values: []string{"other"}}}}, nil, ""},
		{"key type", ec2.DescribeKeyPairsInput{Filters: []types.Filter{{Name: aws.String("key-type"), Values: []string{"rsa"}}}}, []string{"old"}, ""},
	} {
		t.Run("describe "+tc.name, func(t *testing.T) {
			out, err := c.DescribeKeyPairs(ctx, &tc.in)
			if code(err) != tc.code {
				t.Fatalf("error %v, want code %q", err, tc.code)
			}
			if err != nil {
				return
			}
			var got []string
			for _, k := range out.KeyPairs {
				got = append(got, aws.ToString(k.KeyName))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("keys %v, want %v", got, tc.want)
			}
		})
	}

	out, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{"deploy"}, IncludePublicKey: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if k := out.KeyPairs[0]; aws.ToString(k.PublicKey) != pub || k.KeyType != types.KeyTypeEd25519 || k.CreateTime == nil {
		t.Errorf("key pair %+v", k)
	}

	if _, err := c.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String("deploy")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{"deploy"}}); code(err) != "InvalidKeyPair.NotFound" {
		t.Errorf("deleted key: %v", err)
	}
	if _, err := c.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String("deploy")}); err != nil {
		t.Errorf("deleting a missing key: %v", err)
	}
}

func TestSecurityGroups(t *testing.T) {
	_, c := start(t, nil)
	ctx := context.Background()
	created, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("jecloud-web"), Description: aws.String("web servers"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup, Tags: sdkTags(map[string]string{"app": "jecloud"})}}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(created.GroupId)
	if !strings.HasPrefix(id, "sg-") || len(id) != len("sg-0123456789abcdef0") {
		t.Errorf("group ID %q", id)
	}

	for _, tc := range []struct {
		name, group, code string
	}{
		{"duplicate", "jecloud-web", "InvalidGroup.Duplicate"},
		{"reserved", "default", "InvalidParameterValue"},
	} {
		t.Run("create "+tc.name, func(t *testing.T) {
			_, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(tc.group), Description: aws.String("x")})
			if code(err) != tc.code {
				t.Errorf("error %v, want code %s", err, tc.code)
			}
		})
	}

	ssh22 := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
		IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0"), Description: aws.String("ssh")}}}
	https := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
		IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}, Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}}
	auth, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: []types.IpPermission{ssh22, https}})
	if err != nil {
		t.Fatal(err)
	}
	if !aws.ToBool(auth.Return) || len(auth.SecurityGroupRules) != 3 || aws.ToString(auth.SecurityGroupRules[0].CidrIpv4) != "0.0.0.0/0" ||
		aws.ToInt32(auth.SecurityGroupRules[0].FromPort) != 22 {
		t.Errorf("AuthorizeSecurityGroupIngress: %+v", auth)
	}
	for _, tc := range []struct {
		name string
		in   ec2.AuthorizeSecurityGroupIngressInput
		code string
	}{
		{"duplicate", ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: []types.IpPermission{ssh22}}, "InvalidPermission.Duplicate"},
		{"older parameters, duplicate", ec2.AuthorizeSecurityGroupIngressInput{GroupName: aws.String("jecloud-web"), IpProtocol: aws.String("tcp"),
			FromPort: aws.Int32(443), ToPort: aws.Int32(443), CidrIp: aws.String("0.0.0.0/0")}, "InvalidPermission.Duplicate"},
		{"missing group", ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String("sg-0123456789abcdef0"), IpPermissions: []types.IpPermission{ssh22}}, "InvalidGroup.NotFound"},
		{"bad CIDR", ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: []types.IpPermission{{IpProtocol: aws.String("tcp"),
			FromPort: aws.Int32(80), ToPort: aws.Int32(80), IpRanges: []types.IpRange{{CidrIp: aws.String("10.0.0.0/33")}}}}}, "InvalidParameterValue"},
		{"all traffic from a group", ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: []types.IpPermission{{IpProtocol: aws.String("-1"),
			UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(id)}}}}}, ""},
	} {
		t.Run("authorize "+tc.name, func(t *testing.T) {
			_, err := c.AuthorizeSecurityGroupIngress(ctx, &tc.in)
			if code(err) != tc.code {
				t.Errorf("error %v, want code %q", err, tc.code)
			}
		})
	}

	filter := func(name string, values ...string) []types.Filter {
		return []types.Filter{{Name: aws.String(name), Values: values}}
	}
	for _, tc := range []struct {
		name string
		in   ec2.DescribeSecurityGroupsInput
		want []string
		code string
	}{
		{"by name", ec2.DescribeSecurityGroupsInput{GroupNames: []string{"jecloud-web"}}, []string{id}, ""},
		{"by ID", ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}}, []string{id}, ""},
		{"group-name", ec2.DescribeSecurityGroupsInput{Filters: filter("group-name", "jecloud-*")}, []string{id}, ""},
		{"tag", ec2.DescribeSecurityGroupsInput{Filters: filter("tag:app", "jecloud")}, []string{id}, ""},
		{"tag-key", ec2.DescribeSecurityGroupsInput{Filters: filter("tag-key", "nope")}, nil, ""},
		{"port", ec2.DescribeSecurityGroupsInput{Filters: filter("ip-permission.from-port", "22")}, []string{id}, ""},
		{"missing name", ec2.DescribeSecurityGroupsInput{GroupNames: []string{"nope"}}, nil, "InvalidGroup.NotFound"},
		{"missing ID", ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-0123456789abcdef0"}}, nil, "InvalidGroup.NotFound"},
	} {
		t.Run("describe "+tc.name, func(t *testing.T) {
			out, err := c.DescribeSecurityGroups(ctx, &tc.in)
			if code(err) != tc.code {
				t.Fatalf("error %v, want code %q", err, tc.code)
			}
			if err != nil {
				return
			}
			var got []string
			for _, g := range out.SecurityGroups {
				got = append(got, aws.ToString(g.GroupId))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("groups %v, want %v", got, tc.want)
			}
		})
	}

	out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	g := out.SecurityGroups[0]
	if aws.ToString(g.GroupName) != "jecloud-web" || aws.ToString(g.Description) != "web servers" || tagMap(g.Tags)["app"] != "jecloud" ||
		aws.ToString(g.VpcId) == "" || len(g.IpPermissionsEgress) != 1 {
		t.Errorf("group %+v", g)
	}
	if len(g.IpPermissions) != 3 {
		t.Fatalf("%d permissions, want 3 (22, 443, all from the group): %+v", len(g.IpPermissions), g.IpPermissions)
	}
	if p := g.IpPermissions[0]; aws.ToString(p.IpProtocol) != "tcp" || aws.ToInt32(p.FromPort) != 22 || aws.ToInt32(p.ToPort) != 22 ||
		len(p.IpRanges) != 1 || aws.ToString(p.IpRanges[0].CidrIp) != "0.0.0.0/0" || aws.ToString(p.IpRanges[0].Description) != "ssh" {
		t.Errorf("ssh permission %+v", p)
	}
	if p := g.IpPermissions[1]; len(p.IpRanges) != 1 || len(p.Ipv6Ranges) != 1 || aws.ToString(p.Ipv6Ranges[0].CidrIpv6) != "::/0" {
		t.Errorf("https permission %+v", p)
	}
	if p := g.IpPermissions[2]; aws.ToString(p.IpProtocol) != "-1" || p.FromPort != nil || len(p.UserIdGroupPairs) != 1 {
		t.Errorf("group permission %+v", p)
	}

	def, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupNames: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: def.SecurityGroups[0].GroupId}); code(err) != "CannotDelete" {
		t.Errorf("deleting the default group: %v", err)
	}
	if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupNames: []string{"jecloud-web"}}); code(err) != "InvalidGroup.NotFound" {
		t.Errorf("deleted group: %v", err)
	}
	if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)}); code(err) != "InvalidGroup.NotFound" {
		t.Errorf("deleting a deleted group: %v", err)
	}
}

// TestBootstrap is a server's life: key pair, security group, instance
// pending then running, console, termination.
func TestBootstrap(t *testing.T) {
	l := &launcher{gate: make(chan struct{})}
	srv, c := start(t, l)
	ctx := context.Background()
	pub := ed25519Key(t)
	if _, err := c.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String("deploy"), PublicKeyMaterial: []byte(pub)}); err != nil {
		t.Fatal(err)
	}
	sg, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("web"), Description: aws.String("web")})
	if err != nil {
		t.Fatal(err)
	}
	userData := "#cloud-config\nhostname: web1\n"
	inst := run(t, c, func(in *ec2.RunInstancesInput) {
		in.KeyName = aws.String("deploy")
		in.SecurityGroupIds = []string{aws.ToString(sg.GroupId)}
		in.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte(userData)))
		in.TagSpecifications = instanceTags(map[string]string{"Name": "web1", "app": "jecloud"})
		in.MetadataOptions = &types.InstanceMetadataOptionsRequest{HttpTokens: types.HttpTokensStateRequired}
	})
	id := aws.ToString(inst.InstanceId)
	if !strings.HasPrefix(id, "i-0") || len(id) != len("i-0123456789abcdef0") {
		t.Errorf("instance ID %q", id)
	}
	if inst.State.Name != types.InstanceStateNamePending || aws.ToInt32(inst.State.Code) != 0 || inst.PublicIpAddress != nil {
		t.Errorf("new instance: state %+v, public IP %v", inst.State, aws.ToString(inst.PublicIpAddress))
	}
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if s := out.Reservations[0].Instances[0].State.Name; s != types.InstanceStateNamePending {
		t.Errorf("launching instance is %s", s)
	}
	if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: sg.GroupId}); code(err) != "DependencyViolation" {
		t.Errorf("deleting a group in use: %v", err)
	}

	close(l.gate)
	inst = waitRunning(t, c, id)
	if aws.ToInt32(inst.State.Code) != 16 || aws.ToString(inst.PublicIpAddress) != publicIP || aws.ToString(inst.PrivateIpAddress) != privateIP ||
		aws.ToString(inst.PrivateDnsName) != "ip-172-31-5-6.ec2.internal" || aws.ToString(inst.KeyName) != "deploy" ||
		aws.ToString(inst.ImageId) != amd64Image || inst.InstanceType != types.InstanceTypeT3Micro || inst.LaunchTime == nil ||
		inst.Architecture != types.ArchitectureValuesX8664 || inst.MetadataOptions == nil || inst.MetadataOptions.HttpTokens != types.HttpTokensStateRequired {
		t.Errorf("running instance %+v", inst)
	}
	if tags := tagMap(inst.Tags); tags["Name"] != "web1" || tags["app"] != "jecloud" {
		t.Errorf("tags %v", tags)
	}
	if len(inst.SecurityGroups) != 1 || aws.ToString(inst.SecurityGroups[0].GroupId) != aws.ToString(sg.GroupId) || aws.ToString(inst.SecurityGroups[0].GroupName) != "web" {
		t.Errorf("groups %+v", inst.SecurityGroups)
	}

	specs, machines := l.launched()
	if len(specs) != 1 || len(machines) != 1 {
		t.Fatalf("%d launches, %d machines", len(specs), len(machines))
	}
	spec := specs[0]
	if spec.InstanceID != id || spec.ImageID != amd64Image || spec.InstanceType != "t3.micro" || spec.KeyName != "deploy" ||
		spec.KeyMaterial != pub || string(spec.UserData) != userData || !spec.HTTPTokensRequired || spec.Tags["Name"] != "web1" {
		t.Errorf("launch spec %+v", spec)
	}
	snap := srv.Instances()
	if len(snap) != 1 || snap[0].ID != id || snap[0].State != "running" || snap[0].PublicIP != publicIP || string(snap[0].UserData) != userData ||
		snap[0].ClientToken == "" || !slices.Equal(snap[0].SecurityGroupIDs, []string{aws.ToString(sg.GroupId)}) || snap[0].Tags["app"] != "jecloud" {
		t.Errorf("Instances() = %+v", snap)
	}

	co, err := c.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id), Latest: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	text, err := base64.StdEncoding.DecodeString(aws.ToString(co.Output))
	if err != nil || string(text) != console || co.Timestamp == nil || aws.ToString(co.InstanceId) != id {
		t.Errorf("console output %q (%v), %+v", text, err, co)
	}

	term, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if ch := term.TerminatingInstances[0]; ch.PreviousState.Name != types.InstanceStateNameRunning || ch.CurrentState.Name != types.InstanceStateNameShuttingDown ||
		aws.ToInt32(ch.CurrentState.Code) != 32 {
		t.Errorf("TerminateInstances: %+v -> %+v", ch.PreviousState, ch.CurrentState)
	}
	out, err = ec2.NewInstanceTerminatedWaiter(c, fastTerminated).WaitForOutput(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if inst := out.Reservations[0].Instances[0]; aws.ToInt32(inst.State.Code) != 48 || inst.PublicIpAddress != nil ||
		inst.StateReason == nil || aws.ToString(inst.StateReason.Code) != "Client.UserInitiatedShutdown" {
		t.Errorf("terminated instance %+v", inst)
	}
	if n := machines[0].terminated.Load(); n != 1 {
		t.Errorf("machine terminated %d times", n)
	}
	co, err = c.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)})
	if text, _ := base64.StdEncoding.DecodeString(aws.ToString(co.Output)); err != nil || string(text) != console {
		t.Errorf("console output of the terminated instance %q, %v", text, err)
	}

	term, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if ch := term.TerminatingInstances[0]; ch.PreviousState.Name != types.InstanceStateNameTerminated || ch.CurrentState.Name != types.InstanceStateNameTerminated {
		t.Errorf("terminating again: %+v -> %+v", ch.PreviousState, ch.CurrentState)
	}
	if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: sg.GroupId}); err != nil {
		t.Errorf("deleting the group of a terminated instance: %v", err)
	}
	if n := machines[0].terminated.Load(); n != 1 {
		t.Errorf("machine terminated %d times", n)
	}
}

func TestRunInstancesErrors(t *testing.T) {
	l := &launcher{}
	_, c := start(t, l)
	for _, tc := range []struct {
		name string
		edit func(*ec2.RunInstancesInput)
		code string
	}{
		{"unknown image", func(in *ec2.RunInstancesInput) { in.ImageId = aws.String("ami-0123456789abcdef0") }, "InvalidAMIID.NotFound"},
		{"unknown key", func(in *ec2.RunInstancesInput) { in.KeyName = aws.String("nope") }, "InvalidKeyPair.NotFound"},
		{"unknown group", func(in *ec2.RunInstancesInput) { in.SecurityGroupIds = []string{"sg-0123456789abcdef0"} }, "InvalidGroup.NotFound"},
		{"architecture", func(in *ec2.RunInstancesInput) { in.InstanceType = types.InstanceTypeT4gMicro }, "InvalidParameterValue"},
		{"user data", func(in *ec2.RunInstancesInput) { in.UserData = aws.String("not base64!") }, "InvalidParameterValue"},
		{"counts", func(in *ec2.RunInstancesInput) { in.MinCount = aws.Int32(2) }, "InvalidParameterValue"},
		{"tag type", func(in *ec2.RunInstancesInput) {
			in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeVpc, Tags: sdkTags(map[string]string{"a": "b"})}}
		}, "InvalidParameterValue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &ec2.RunInstancesInput{ImageId: aws.String(amd64Image), InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}
			tc.edit(in)
			if _, err := c.RunInstances(context.Background(), in); code(err) != tc.code {
				t.Errorf("error %v, want code %s", err, tc.code)
			}
		})
	}
	if specs, _ := l.launched(); len(specs) != 0 {
		t.Errorf("%d launches", len(specs))
	}
	inst := run(t, c, func(in *ec2.RunInstancesInput) {
		in.ImageId, in.InstanceType = aws.String(arm64Image), types.InstanceTypeT4gMicro
	})
	if inst.Architecture != types.ArchitectureValuesArm64 {
		t.Errorf("arm64 instance: %s", inst.Architecture)
	}
}

func TestClientToken(t *testing.T) {
	l := &launcher{}
	srv, c := start(t, l)
	ctx := context.Background()
	in := &ec2.RunInstancesInput{ImageId: aws.String(amd64Image), InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		ClientToken: aws.String("web1-token"), TagSpecifications: instanceTags(map[string]string{"Name": "web1"})}
	first, err := c.RunInstances(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.RunInstances(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(first.ReservationId) != aws.ToString(second.ReservationId) ||
		aws.ToString(first.Instances[0].InstanceId) != aws.ToString(second.Instances[0].InstanceId) {
		t.Errorf("second RunInstances with the token: reservation %s instance %s, want %s %s",
			aws.ToString(second.ReservationId), aws.ToString(second.Instances[0].InstanceId),
			aws.ToString(first.ReservationId), aws.ToString(first.Instances[0].InstanceId))
	}
	waitRunning(t, c, aws.ToString(first.Instances[0].InstanceId))
	if specs, _ := l.launched(); len(specs) != 1 {
		t.Errorf("%d launches, want 1", len(specs))
	}
	if n := len(srv.Instances()); n != 1 {
		t.Errorf("%d instances, want 1", n)
	}
	if n := srv.Calls("RunInstances"); n != 2 {
		t.Errorf("Calls(RunInstances) = %d, want 2", n)
	}

	in.InstanceType = types.InstanceTypeT3Small
	if _, err := c.RunInstances(ctx, in); code(err) != "IdempotentParameterMismatch" {
		t.Errorf("same token, other parameters: %v", err)
	}

	// Without a token of its own, each request gets the SDK's.
	in.ClientToken = nil
	run(t, c, nil)
	run(t, c, nil)
	if n := len(srv.Instances()); n != 3 {
		t.Errorf("%d instances, want 3", n)
	}
}

func TestDescribeInstances(t *testing.T) {
	_, c := start(t, &launcher{})
	ctx := context.Background()
	web := run(t, c, func(in *ec2.RunInstancesInput) {
		in.ClientToken = aws.String("web")
		in.TagSpecifications = instanceTags(map[string]string{"role": "web"})
	})
	db := run(t, c, func(in *ec2.RunInstancesInput) {
		in.TagSpecifications = instanceTags(map[string]string{"role": "db", "backup": "daily"})
	})
	webID, dbID := aws.ToString(web.InstanceId), aws.ToString(db.InstanceId)
	waitRunning(t, c, webID)
	waitRunning(t, c, dbID)
	gone := run(t, c, nil)
	goneID := aws.ToString(gone.InstanceId)
	waitRunning(t, c, goneID)
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{goneID}}); err != nil {
		t.Fatal(err)
	}
	if err := ec2.NewInstanceTerminatedWaiter(c, fastTerminated).Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{goneID}}, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	filter := func(name string, values ...string) []types.Filter {
		return []types.Filter{{Name: aws.String(name), Values: values}}
	}
	for _, tc := range []struct {
		name string
		in   ec2.DescribeInstancesInput
		want []string
		code string
	}{
		{"all", ec2.DescribeInstancesInput{}, []string{webID, dbID, goneID}, ""},
		{"running", ec2.DescribeInstancesInput{Filters: filter("instance-state-name", "running")}, []string{webID, dbID}, ""},
		{"terminated", ec2.DescribeInstancesInput{Filters: filter("instance-state-name", "terminated")}, []string{goneID}, ""},
		{"pending or running", ec2.DescribeInstancesInput{Filters: filter("instance-state-name", "pending", "running")}, []string{webID, dbID}, ""},
		{"tag", ec2.DescribeInstancesInput{Filters: filter("tag:role", "web")}, []string{webID}, ""},
		{"tag wildcard", ec2.DescribeInstancesInput{Filters: filter("tag:role", "*b")}, []string{webID, dbID}, ""},
		{"tag-key", ec2.DescribeInstancesInput{Filters: filter("tag-key", "backup")}, []string{dbID}, ""},
		{"client-token", ec2.DescribeInstancesInput{Filters: filter("client-token", "web")}, []string{webID}, ""},
		{"filters are ANDed", ec2.DescribeInstancesInput{Filters: append(filter("tag-key", "role"), filter("tag:role", "db")...)}, []string{dbID}, ""},
		{"by ID", ec2.DescribeInstancesInput{InstanceIds: []string{dbID}}, []string{dbID}, ""},
		{"ID and filter", ec2.DescribeInstancesInput{InstanceIds: []string{dbID}, Filters: filter("tag:role", "web")}, nil, ""},
		{"unknown ID", ec2.DescribeInstancesInput{InstanceIds: []string{webID, "i-0123456789abcdef0"}}, nil, "InvalidInstanceID.NotFound"},
		{"malformed ID", ec2.DescribeInstancesInput{InstanceIds: []string{"web1"}}, nil, "InvalidInstanceID.Malformed"},
		{"bad filter", ec2.DescribeInstancesInput{Filters: filter("colour", "blue")}, nil, "InvalidParameterValue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.DescribeInstances(ctx, &tc.in)
			if code(err) != tc.code {
				t.Fatalf("error %v, want code %q", err, tc.code)
			}
			if err != nil {
				return
			}
			var got []string
			for _, r := range out.Reservations {
				if !strings.HasPrefix(aws.ToString(r.ReservationId), "r-") || len(r.Instances) == 0 {
					t.Errorf("reservation %+v", r)
				}
				for _, inst := range r.Instances {
					got = append(got, aws.ToString(inst.InstanceId))
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("instances %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTerminatePending(t *testing.T) {
	l := &launcher{gate: make(chan struct{})}
	_, c := start(t, l)
	id := aws.ToString(run(t, c, nil).InstanceId)
	if _, err := c.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	if err := ec2.NewInstanceTerminatedWaiter(c, fastTerminated).Wait(context.Background(),
		&ec2.DescribeInstancesInput{InstanceIds: []string{id}}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, machines := l.launched(); len(machines) != 0 {
		t.Errorf("launch was not canceled")
	}
	if _, err := c.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}}); code(err) != "InvalidInstanceID.NotFound" {
		t.Errorf("terminating an unknown instance: %v", err)
	}
}

func TestLaunchFailure(t *testing.T) {
	l := &launcher{err: errors.New("no capacity")}
	_, c := start(t, l)
	id := aws.ToString(run(t, c, nil).InstanceId)
	err := ec2.NewInstanceRunningWaiter(c, fastRunning).Wait(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "Failure") {
		t.Errorf("running waiter: %v, want failure", err)
	}
	out, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	inst := out.Reservations[0].Instances[0]
	if inst.State.Name != types.InstanceStateNameTerminated || inst.StateReason == nil || aws.ToString(inst.StateReason.Code) != "Server.InternalError" {
		t.Errorf("instance %+v, state reason %+v", inst.State, inst.StateReason)
	}
	co, err := c.GetConsoleOutput(context.Background(), &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)})
	if err != nil || co.Output != nil {
		t.Errorf("console output %+v, %v", co, err)
	}
}

func TestCreateTags(t *testing.T) {
	_, c := start(t, nil)
	ctx := context.Background()
	id := aws.ToString(run(t, c, nil).InstanceId)
	sg, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("web"), Description: aws.String("web")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id, aws.ToString(sg.GroupId)},
		Tags: sdkTags(map[string]string{"app": "jecloud"})}); err != nil {
		t.Fatal(err)
	}
	insts, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("tag:app"), Values: []string{"jecloud"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(insts.Reservations) != 1 || aws.ToString(insts.Reservations[0].Instances[0].InstanceId) != id {
		t.Errorf("tagged instances %+v", insts.Reservations)
	}
	groups, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{{Name: aws.String("tag:app"), Values: []string{"jecloud"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(groups.SecurityGroups) != 1 || aws.ToString(groups.SecurityGroups[0].GroupId) != aws.ToString(sg.GroupId) {
		t.Errorf("tagged groups %+v", groups.SecurityGroups)
	}
	for _, tc := range []struct {
		name, id, code string
	}{
		{"unknown instance", "i-0123456789abcdef0", "InvalidInstanceID.NotFound"},
		{"unknown group", "sg-0123456789abcdef0", "InvalidGroup.NotFound"},
		{"unknown kind", "vol-0123456789abcdef0", "InvalidID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{tc.id}, Tags: sdkTags(map[string]string{"a": "b"})})
			if code(err) != tc.code {
				t.Errorf("error %v, want code %s", err, tc.code)
			}
		})
	}
}

func TestProtocolErrors(t *testing.T) {
	srv, c := start(t, nil)
	ctx := context.Background()

	resp, err := http.PostForm(srv.URL, url.Values{"Action": {"DescribeInstances"}, "Version": {"2016-11-15"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "<Code>AuthFailure</Code>") ||
		!strings.Contains(string(body), "<RequestID>") {
		t.Errorf("unsigned request: %s %s", resp.Status, body)
	}

	_, err = c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidAction" || !strings.Contains(ae.ErrorMessage(), "DescribeVpcs") {
		t.Errorf("unknown action: %v", err)
	}

	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{DryRun: aws.Bool(true)}); code(err) != "DryRunOperation" {
		t.Errorf("dry run: %v", err)
	}
	if n := srv.Calls("DescribeInstances"); n != 2 {
		t.Errorf("Calls(DescribeInstances) = %d, want 2", n)
	}
	if n := srv.Calls("DescribeVpcs"); n != 1 {
		t.Errorf("Calls(DescribeVpcs) = %d, want 1", n)
	}
}

func TestCallerIdentity(t *testing.T) {
	srv := ec2test.New(t, nil)
	c := sts.NewFromConfig(awsConfig(t), func(o *sts.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	out, err := c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Account) != "123456789012" || srv.Account != "123456789012" ||
		!strings.HasPrefix(aws.ToString(out.Arn), "arn:aws:iam::123456789012:") || aws.ToString(out.UserId) == "" {
		t.Errorf("GetCallerIdentity: %+v", out)
	}
	if _, err := c.GetSessionToken(context.Background(), &sts.GetSessionTokenInput{}); code(err) != "InvalidAction" {
		t.Errorf("GetSessionToken: %v", err)
	}
}

func TestCleanupTerminates(t *testing.T) {
	l := &launcher{}
	t.Run("server", func(t *testing.T) {
		_, c := start(t, l)
		waitRunning(t, c, aws.ToString(run(t, c, nil).InstanceId))
	})
	_, machines := l.launched()
	if len(machines) != 1 || machines[0].terminated.Load() != 1 {
		t.Errorf("machine not terminated at cleanup")
	}
}

func TestNilLauncher(t *testing.T) {
	_, c := start(t, nil)
	out, err := c.RunInstances(context.Background(), &ec2.RunInstancesInput{ImageId: aws.String(amd64Image),
		InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Instances) != 2 {
		t.Fatalf("%d instances, want 2", len(out.Instances))
	}
	a := waitRunning(t, c, aws.ToString(out.Instances[0].InstanceId))
	b := waitRunning(t, c, aws.ToString(out.Instances[1].InstanceId))
	if aws.ToString(a.PublicIpAddress) == "" || aws.ToString(a.PublicIpAddress) == aws.ToString(b.PublicIpAddress) ||
		aws.ToString(a.PrivateIpAddress) == "" || aws.ToInt32(b.AmiLaunchIndex) != 1 {
		t.Errorf("instances %+v %+v", a, b)
	}
}

// TestIAM: roles, inline policies and instance profiles through the real
// IAM client; an instance launched with a profile that does not exist is
// refused, one with a profile records it.
func TestIAM(t *testing.T) {
	srv := ec2test.New(t, nil)
	ctx := t.Context()
	c := iam.NewFromConfig(awsConfig(t), func(o *iam.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	ec := ec2.NewFromConfig(awsConfig(t), func(o *ec2.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	var nse *iamtypes.NoSuchEntityException
	if _, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("web")}); !errors.As(err, &nse) {
		t.Fatalf("GetRole of a missing role: %v", err)
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("web"), AssumeRolePolicyDocument: aws.String(trust),
		Tags: []iamtypes.Tag{{Key: aws.String("jecloud:app"), Value: aws.String("shop")}}}); err != nil {
		t.Fatal(err)
	}
	var exists *iamtypes.EntityAlreadyExistsException
	if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("web"), AssumeRolePolicyDocument: aws.String(trust)}); !errors.As(err, &exists) {
		t.Errorf("CreateRole twice: %v", err)
	}
	got, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("web")})
	if err != nil || aws.ToString(got.Role.Arn) != "arn:aws:iam::123456789012:role/web" || len(got.Role.Tags) != 1 {
		t.Fatalf("GetRole: %+v %v", got, err)
	}
	if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("web"), PolicyName: aws.String("state"), PolicyDocument: aws.String(`{"Version":"2012-10-17"}`)}); err != nil {
		t.Fatal(err)
	}
	if srv.RolePolicy("web", "state") != `{"Version":"2012-10-17"}` {
		t.Errorf("policy: %q", srv.RolePolicy("web", "state"))
	}
	run := func(profile string) error {
		_, err := ec.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-0debian12amd64"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			IamInstanceProfile: &types.IamInstanceProfileSpecification{Name: aws.String(profile)}})
		return err
	}
	if err := run("web"); err == nil || !strings.Contains(err.Error(), "Invalid IAM Instance Profile name") {
		t.Errorf("launch with a missing profile: %v", err)
	}
	if _, err := c.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String("web"), RoleName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	p, err := c.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String("web")})
	if err != nil || len(p.InstanceProfile.Roles) != 1 || aws.ToString(p.InstanceProfile.Roles[0].RoleName) != "web" {
		t.Fatalf("GetInstanceProfile: %+v %v", p, err)
	}
	if err := run("web"); err != nil {
		t.Fatal(err)
	}
	if in := srv.Instances(); len(in) != 1 || in[0].InstanceProfile != "web" {
		t.Errorf("instances: %+v", in)
	}
	// Deleting in the wrong order is refused, in the right one it works.
	if _, err := c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("web")}); err == nil {
		t.Error("a role with a policy and a profile was deleted")
	}
	for _, step := range []func() error{
		func() error {
			_, err := c.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{InstanceProfileName: aws.String("web"), RoleName: aws.String("web")})
			return err
		},
		func() error {
			_, err := c.DeleteInstanceProfile(ctx, &iam.DeleteInstanceProfileInput{InstanceProfileName: aws.String("web")})
			return err
		},
		func() error {
			_, err := c.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String("web"), PolicyName: aws.String("state")})
			return err
		},
		func() error {
			_, err := c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("web")})
			return err
		},
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRevokeSecurityGroupIngress: rules go by their permission (or their
// rule ID); a rule that is not there is InvalidPermission.NotFound, and
// then none of the request's rules is revoked (as in a default VPC).
func TestRevokeSecurityGroupIngress(t *testing.T) {
	_, c := start(t, nil)
	ctx := context.Background()
	created, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("jecloud-web"), Description: aws.String("web servers")})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GroupId
	perm := func(port int32, cidrs ...string) types.IpPermission {
		p := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port)}
		for _, c := range cidrs {
			p.IpRanges = append(p.IpRanges, types.IpRange{CidrIp: aws.String(c)})
		}
		return p
	}
	auth, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: id,
		IpPermissions: []types.IpPermission{perm(22, "203.0.113.7/32", "198.51.100.0/24"), perm(443, "0.0.0.0/0")}})
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{*id}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range out.SecurityGroups[0].IpPermissions {
			n += len(p.IpRanges)
		}
		return n
	}
	// One rule there, one not: nothing revoked.
	_, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: id,
		IpPermissions: []types.IpPermission{perm(22, "203.0.113.7/32"), perm(80, "0.0.0.0/0")}})
	if code(err) != "InvalidPermission.NotFound" || count() != 3 {
		t.Fatalf("revoking a missing rule: %v, %d rules left", err, count())
	}
	if _, err := c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: id,
		IpPermissions: []types.IpPermission{perm(22, "198.51.100.0/24")}}); err != nil || count() != 2 {
		t.Fatalf("revoke: %v, %d rules left", err, count())
	}
	// By rule ID (the 443 rule), and with the older parameters.
	if _, err := c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: id,
		SecurityGroupRuleIds: []string{aws.ToString(auth.SecurityGroupRules[2].SecurityGroupRuleId)}}); err != nil || count() != 1 {
		t.Fatalf("revoke by rule ID: %v, %d rules left", err, count())
	}
	if _, err := c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupName: aws.String("jecloud-web"),
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), CidrIp: aws.String("203.0.113.7/32")}); err != nil || count() != 0 {
		t.Fatalf("revoke with the older parameters: %v, %d rules left", err, count())
	}
	if _, err := c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String("sg-0123456789abcdef0"),
		IpPermissions: []types.IpPermission{perm(22, "0.0.0.0/0")}}); code(err) != "InvalidGroup.NotFound" {
		t.Errorf("missing group: %v", err)
	}
}

// TestIAMAndGroupNames: the fake refuses the names AWS refuses (IAM:
// [\w+=,.@-], 64 characters for a role, 128 for a profile; a VPC security
// group: letters, digits, spaces and ._-:/()#,@[]+=&;{}!$*), so that a
// name JeCloud makes is known to be one AWS takes.
func TestIAMAndGroupNames(t *testing.T) {
	srv := ec2test.New(t, nil)
	ctx := t.Context()
	c := iam.NewFromConfig(awsConfig(t), func(o *iam.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	ec := ec2.NewFromConfig(awsConfig(t), func(o *ec2.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	trust := aws.String(`{"Version":"2012-10-17"}`)
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"jecloud-shop_prod", true},
		{"jecloud-" + strings.Repeat("a", 56), true},
		{"jecloud-" + strings.Repeat("a", 57), false},
		{"jecloud-shop/prod", false},
		{"jecloud-shop prod", false},
	} {
		_, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(tc.name), AssumeRolePolicyDocument: trust})
		if (err == nil) != tc.ok {
			t.Errorf("CreateRole %q: %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	if _, err := c.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String("jecloud-a_b\n")}); err == nil {
		t.Error("a profile name with a newline was taken")
	}
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"jecloud-shop_prod", true},
		{"jecloud-shop_prod.worker", true},
		{"jecloud-shöp", false},
		{"jecloud-shop\tprod", false},
	} {
		_, err := ec.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(tc.name), Description: aws.String("d")})
		if (err == nil) != tc.ok {
			t.Errorf("CreateSecurityGroup %q: %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
