package bootstrap_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/jecloud/jecloud/internal/backup/s3test"
	"github.com/jecloud/jecloud/internal/bootstrap"
	"github.com/jecloud/jecloud/internal/ec2test"
	"github.com/jecloud/jecloud/internal/globalstate"
	"github.com/jecloud/jecloud/internal/remote"
)

// TestSecurityGroupNarrowed: narrowing ssh_from or ports in jecloud.toml
// revokes what is no longer listed. The attack: SSH stays open to an
// address the owner removed (an old office, a leaked CI runner), and a
// port closed in the config stays open to the world. The group is made
// with SSH from A and B and ports 80, 443 and 5000 (the quick start
// before the front door, issue #19, opened the apps' port 5000); after a
// push with SSH from A only and the default ports (80 and 443, the front
// door's) its rules are exactly those; with no port, SSH from A alone;
// widening again adds them back, and rules added by hand are revoked too.
func TestSecurityGroupNarrowed(t *testing.T) {
	fake := ec2test.New(t, nil) // instances never show host keys: Ensure stops at "booting"
	api := ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(fake.URL),
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")})
	s3 := s3test.Start(t, "127.0.0.1")
	st := &globalstate.Store{S3: s3.Client(t), Bucket: s3.Bucket}
	ctx := t.Context()
	agent := filepath.Join(t.TempDir(), "jeagent")
	os.WriteFile(agent, []byte("#!/bin/sh\n"), 0o755)
	var log bytes.Buffer
	const a, b = "203.0.113.7/32", "198.51.100.0/24"
	o := bootstrap.Options{App: "shop", Env: "prod", Count: 1, SSHFrom: []string{a, b}, Ports: []int32{80, 443, 5000},
		AuthorizedKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDQv test@laptop", Agent: agent,
		SSH: remote.SSHOptions{Home: t.TempDir()}, Log: &log, Poll: 20 * time.Millisecond, Timeout: 300 * time.Millisecond}
	ensure := func(o bootstrap.Options) {
		t.Helper()
		if _, err := bootstrap.Ensure(ctx, api, st, o); err == nil || !strings.Contains(err.Error(), "shop-prod-1") {
			t.Fatalf("Ensure: %v, want it to stop waiting for the console", err)
		}
	}
	rules := func() []string {
		t.Helper()
		out, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{{Name: aws.String("group-name"), Values: []string{"jecloud-shop_prod"}}}})
		if err != nil || len(out.SecurityGroups) != 1 {
			t.Fatalf("group: %v, %d groups", err, len(out.SecurityGroups))
		}
		var got []string
		for _, p := range out.SecurityGroups[0].IpPermissions {
			for _, r := range p.IpRanges {
				got = append(got, aws.ToString(p.IpProtocol)+"/"+itoa(aws.ToInt32(p.FromPort))+"-"+itoa(aws.ToInt32(p.ToPort))+" from "+aws.ToString(r.CidrIp))
			}
			for _, r := range p.Ipv6Ranges {
				got = append(got, aws.ToString(p.IpProtocol)+"/"+itoa(aws.ToInt32(p.FromPort))+"-"+itoa(aws.ToInt32(p.ToPort))+" from "+aws.ToString(r.CidrIpv6))
			}
		}
		slices.Sort(got)
		return got
	}
	check := func(when string, want ...string) {
		t.Helper()
		slices.Sort(want)
		if got := rules(); !slices.Equal(got, want) {
			t.Errorf("%s: rules %q, want exactly %q", when, got, want)
		}
	}
	ensure(o)
	web := []string{"tcp/80-80 from 0.0.0.0/0", "tcp/443-443 from 0.0.0.0/0"}
	check("made with A+B and 80, 443, 5000", append([]string{"tcp/22-22 from " + a, "tcp/22-22 from " + b, "tcp/5000-5000 from 0.0.0.0/0"}, web...)...)

	frontDoor := o
	frontDoor.SSHFrom, frontDoor.Ports = []string{a}, []int32{80, 443}
	ensure(frontDoor)
	check("narrowed to A and the front door's ports", append([]string{"tcp/22-22 from " + a}, web...)...)
	if !strings.Contains(log.String(), "revoked tcp port 5000 from 0.0.0.0/0") {
		t.Errorf("log does not say port 5000 was revoked:\n%s", log.String())
	}

	narrowed := o
	narrowed.SSHFrom, narrowed.Ports = []string{a}, nil
	ensure(narrowed)
	check("narrowed to A, no port", "tcp/22-22 from "+a)

	// A rule added by hand (in the console) is not in jecloud.toml either.
	out, _ := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupNames: []string{"jecloud-shop_prod"}})
	if _, err := api.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: out.SecurityGroups[0].GroupId,
		IpPermissions: []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(3306), ToPort: aws.Int32(3306),
			Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}}}}); err != nil {
		t.Fatal(err)
	}
	ensure(o)
	check("widened again, a hand-made rule", append([]string{"tcp/22-22 from " + a, "tcp/22-22 from " + b, "tcp/5000-5000 from 0.0.0.0/0"}, web...)...)
	if !strings.Contains(log.String(), "revoked") {
		t.Errorf("log does not say what was revoked:\n%s", log.String())
	}
	t.Logf("summary: security group narrowed from SSH A+B and ports 80, 443, 5000 to SSH A and the front door's 80 and 443, then to SSH A alone: %d rules left, exactly the listed ones", len(rules()))
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }
