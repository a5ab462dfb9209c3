package bootstrap_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/jecloud/jecloud/internal/backup/s3test"
	"github.com/jecloud/jecloud/internal/bootstrap"
	"github.com/jecloud/jecloud/internal/ec2test"
	"github.com/jecloud/jecloud/internal/globalstate"
	"github.com/jecloud/jecloud/internal/remote"
)

// awsWorld is the EC2 and IAM fake with a state bucket, and Options for
// app/env that stop once the server is launched (the fake never shows
// host keys).
type awsWorld struct {
	fake *ec2test.Server
	ec2  *ec2.Client
	iam  *iam.Client
	st   *globalstate.Store
	log  bytes.Buffer
}

func newAWSWorld(t *testing.T) *awsWorld {
	fake := ec2test.New(t, nil)
	creds := credentials.NewStaticCredentialsProvider("k", "s", "")
	s3 := s3test.Start(t, "127.0.0.1")
	return &awsWorld{fake: fake,
		ec2: ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(fake.URL), Credentials: creds}),
		iam: iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(fake.URL), Credentials: creds}),
		st:  &globalstate.Store{S3: s3.Client(t), Bucket: s3.Bucket}}
}

func (w *awsWorld) options(t *testing.T, app, env string) bootstrap.Options {
	agent := filepath.Join(t.TempDir(), "jeagent")
	os.WriteFile(agent, []byte("#!/bin/sh\n"), 0o755)
	return bootstrap.Options{App: app, Env: env, Count: 1, SSHFrom: []string{"203.0.113.7/32"}, Ports: []int32{5000},
		AuthorizedKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDQv test@laptop", Agent: agent,
		SSH: remote.SSHOptions{Home: t.TempDir()}, Log: &w.log, Poll: 20 * time.Millisecond, Timeout: 300 * time.Millisecond,
		IAM: w.iam, StateBucket: "jecloud-state-test"}
}

// ensure runs Ensure until it waits for the new server's console.
func (w *awsWorld) ensure(t *testing.T, o bootstrap.Options) {
	t.Helper()
	if _, err := bootstrap.Ensure(t.Context(), w.ec2, w.st, o); err == nil || !strings.Contains(err.Error(), o.App+"-"+o.Env+"-1") {
		t.Fatalf("Ensure %s/%s: %v, want it to stop waiting for the console\n%s", o.App, o.Env, err, w.log.String())
	}
}

// launched returns the profile and security group names of app/env's instances.
func (w *awsWorld) launched(t *testing.T, app, env string) (profiles, groups []string) {
	t.Helper()
	out, err := w.ec2.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:" + bootstrap.TagApp), Values: []string{app}}, {Name: aws.String("tag:" + bootstrap.TagEnv), Values: []string{env}}}})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]string{}
	for _, i := range w.fake.Instances() {
		byID[i.ID] = i.InstanceProfile
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			profiles = append(profiles, byID[aws.ToString(i.InstanceId)])
			for _, g := range i.SecurityGroups {
				groups = append(groups, aws.ToString(g.GroupName))
			}
		}
	}
	return profiles, groups
}

// TestEnvironmentsGetTheirOwnRoleAndGroup: the attack is an app
// environment whose name joined with '-' is another's, (a, b-c) and
// (a-b, c). Before issue #17's names, the second's push found the first's
// role "jecloud-a-b-c", replaced its policy with its own (the first's
// servers lost their rights to their document, and got the second's) and
// launched its servers with that role and into the first's security group,
// whose rules it then rewrote. Each must get its own role, instance profile
// and security group, and leave the other's as they were.
func TestEnvironmentsGetTheirOwnRoleAndGroup(t *testing.T) {
	w := newAWSWorld(t)
	long := strings.Repeat("x", 40) // jecloud-APP_ENV would be 89 characters, over IAM's 64
	pairs := [][2]string{{"a", "b-c"}, {"a-b", "c"}, {long, long + "-y"}, {long + "-" + long[:10], "y"}}
	for _, p := range pairs {
		w.ensure(t, w.options(t, p[0], p[1]))
	}
	seenProfile, seenGroup := map[string]string{}, map[string]string{}
	for _, p := range pairs {
		app, env := p[0], p[1]
		profiles, groups := w.launched(t, app, env)
		if len(profiles) != 1 || len(groups) != 1 {
			t.Fatalf("%s/%s: instances with profiles %q, groups %q", app, env, profiles, groups)
		}
		if other, ok := seenProfile[profiles[0]]; ok {
			t.Errorf("%s/%s and %s share the instance profile (and role) %s", app, env, other, profiles[0])
		}
		if other, ok := seenGroup[groups[0]]; ok {
			t.Errorf("%s/%s and %s share the security group %s", app, env, other, groups[0])
		}
		seenProfile[profiles[0]], seenGroup[groups[0]] = app+"/"+env, app+"/"+env
		policy := w.fake.RolePolicy(profiles[0], "jecloud-state")
		if !strings.Contains(policy, globalstate.Key(app, env)) {
			t.Errorf("%s/%s's servers' role %s: policy %s does not name its document %s", app, env, profiles[0], policy, globalstate.Key(app, env))
		}
		t.Logf("%s/%s: role and profile %s, security group %s", app, env, profiles[0], groups[0])
	}
	if !t.Failed() {
		t.Logf("summary: (a, b-c) and (a-b, c), and two 40-character pairs like them: 4 roles, 4 instance profiles, 4 security groups, each role's policy its own")
	}
}

// TestLegacyRoleAndGroupKept: an environment made before issue #17 has its
// role, instance profile and security group under the old names
// (jecloud-APP-ENV), tagged for it; its next push must find and manage
// them, not make a second set. A resource of an old name tagged for
// another environment (or for none) is never taken.
func TestLegacyRoleAndGroupKept(t *testing.T) {
	w := newAWSWorld(t)
	ctx := t.Context()
	legacy := func(name, app, env string) {
		t.Helper()
		tags := []iamtypes.Tag{{Key: aws.String(bootstrap.TagApp), Value: aws.String(app)}, {Key: aws.String(bootstrap.TagEnv), Value: aws.String(env)}}
		if app == "" {
			tags = nil
		}
		mustDo(t, func(ctx context.Context) error {
			_, err := w.iam.CreateRole(ctx, &iam.CreateRoleInput{RoleName: &name, Tags: tags,
				AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)})
			return err
		})
		mustDo(t, func(ctx context.Context) error {
			_, err := w.iam.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: &name, PolicyName: aws.String("jecloud-state"), PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[]}`)})
			return err
		})
		mustDo(t, func(ctx context.Context) error {
			_, err := w.iam.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: &name})
			return err
		})
		mustDo(t, func(ctx context.Context) error {
			_, err := w.iam.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: &name, RoleName: &name})
			return err
		})
		var etags []types.Tag
		if app != "" {
			etags = []types.Tag{{Key: aws.String(bootstrap.TagApp), Value: aws.String(app)}, {Key: aws.String(bootstrap.TagEnv), Value: aws.String(env)},
				{Key: aws.String(bootstrap.TagRole), Value: aws.String("web")}}
		}
		mustDo(t, func(ctx context.Context) error {
			_, err := w.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: &name, Description: aws.String("made before issue #17"),
				TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup, Tags: etags}}})
			return err
		})
	}
	legacy("jecloud-shop-prod", "shop", "prod")       // shop/prod's own
	legacy("jecloud-shop-prod-eu", "shop", "prod-eu") // shop/prod-eu's: shop-prod/eu must not take it
	legacy("jecloud-blog-prod", "", "")               // someone's, untagged

	for _, tc := range []struct {
		app, env, want string
	}{
		{"shop", "prod", "jecloud-shop-prod"},
		{"shop-prod", "eu", bootstrap.RoleName("shop-prod", "eu")},
		{"blog", "prod", bootstrap.RoleName("blog", "prod")},
	} {
		w.ensure(t, w.options(t, tc.app, tc.env))
		profiles, groups := w.launched(t, tc.app, tc.env)
		if len(profiles) != 1 || profiles[0] != tc.want || len(groups) != 1 || groups[0] != tc.want {
			t.Errorf("%s/%s: launched with profile %q and group %q, want %s for both", tc.app, tc.env, profiles, groups, tc.want)
		}
		if p := w.fake.RolePolicy(tc.want, "jecloud-state"); !strings.Contains(p, globalstate.Key(tc.app, tc.env)) {
			t.Errorf("%s/%s: the policy of %s is %s", tc.app, tc.env, tc.want, p)
		}
	}
	if p := w.fake.RolePolicy("jecloud-shop-prod-eu", "jecloud-state"); p != `{"Version":"2012-10-17","Statement":[]}` {
		t.Errorf("shop/prod-eu's role was changed by another environment: %s", p)
	}
	if p := w.fake.RolePolicy("jecloud-blog-prod", "jecloud-state"); p != `{"Version":"2012-10-17","Statement":[]}` {
		t.Errorf("an untagged role of an old name was taken: %s", p)
	}

	// Destroy removes the old-named resources of the environment, and
	// leaves the others'.
	o := w.options(t, "shop", "prod")
	o.Timeout = 10 * time.Second
	if err := bootstrap.Destroy(ctx, w.ec2, w.st, o); err != nil {
		t.Fatal(err)
	}
	if _, err := w.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("jecloud-shop-prod")}); err == nil {
		t.Error("destroy left shop/prod's role of the old name")
	}
	for _, n := range []string{"jecloud-shop-prod-eu", "jecloud-blog-prod"} {
		if _, err := w.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(n)}); err != nil {
			t.Errorf("destroying shop/prod removed %s: %v", n, err)
		}
	}
	out, err := w.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, g := range out.SecurityGroups {
		left = append(left, aws.ToString(g.GroupName))
	}
	if strings.Contains(" "+strings.Join(left, " ")+" ", " jecloud-shop-prod ") || !strings.Contains(strings.Join(left, " "), "jecloud-shop-prod-eu") {
		t.Errorf("security groups after destroying shop/prod: %q", left)
	}
	if !t.Failed() {
		t.Logf("summary: old names: shop/prod kept its role, profile and group; shop-prod/eu and blog/prod (whose old names were another's or untagged) got new ones; destroy removed shop/prod's only")
	}
}

func mustDo(t *testing.T, f func(context.Context) error) {
	t.Helper()
	if err := f(t.Context()); err != nil {
		t.Fatal(err)
	}
}
