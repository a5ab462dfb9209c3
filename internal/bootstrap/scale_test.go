package bootstrap_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
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

// TestScaleRole: `jepush scale ENV --role worker N` launches servers of that
// role only (tagged jecloud:role, named APP-ENV-worker-N, in a security
// group of their own with SSH and no web ports), keeps N in desired_roles,
// and terminates only that role's servers, the newest first; the web
// server is never touched, and web cannot go below 1.
func TestScaleRole(t *testing.T) {
	fake := ec2test.New(t, nil) // machines that never show host keys: a launch stops at "booting"
	api := ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(fake.URL),
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")})
	s3 := s3test.Start(t, "127.0.0.1")
	st := &globalstate.Store{S3: s3.Client(t), Bucket: s3.Bucket}
	ctx := t.Context()
	agent := filepath.Join(t.TempDir(), "jeagent")
	os.WriteFile(agent, []byte("#!/bin/sh\n"), 0o755)
	var log bytes.Buffer
	o := bootstrap.Options{App: "shop", Env: "prod", Count: 1, SSHFrom: []string{"203.0.113.7/32"}, Ports: []int32{80, 443},
		AuthorizedKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDQv test@laptop", Agent: agent,
		SSH: remote.SSHOptions{Home: t.TempDir()}, Log: &log, Poll: 20 * time.Millisecond, Timeout: 500 * time.Millisecond}

	// The web server, made earlier.
	run, err := api.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-0debian12amd64"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{
			{Key: aws.String(bootstrap.TagApp), Value: aws.String("shop")}, {Key: aws.String(bootstrap.TagEnv), Value: aws.String("prod")},
			{Key: aws.String(bootstrap.TagRole), Value: aws.String("web")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	webID := aws.ToString(run.Instances[0].InstanceId)
	st.Update(ctx, "shop", "prod", func(e *globalstate.Env) error {
		e.Servers = []globalstate.Server{{Name: "shop-prod-1", Host: "198.51.100.1", Role: "web", User: "jecloud", InstanceID: webID}}
		return nil
	})

	scale := func(role string, n int) error {
		o := o
		o.Role = role
		_, err := bootstrap.Scale(ctx, api, st, o, n)
		return err
	}
	// Two worker servers: each launched, then stopped waiting for its
	// console; the first is then taken for made (as if jeagent was installed).
	for _, n := range []int{1, 2} {
		if err := scale("worker", n); err == nil || !strings.Contains(err.Error(), "shop-prod-worker-") {
			t.Fatalf("scale worker %d: %v, want it to stop at the console", n, err)
		}
		st.Update(ctx, "shop", "prod", func(e *globalstate.Env) error {
			if s := e.Server("shop-prod-worker-1"); s != nil {
				s.Bootstrap, s.Host = nil, "198.51.100.2"
			}
			return nil
		})
	}
	byName := map[string]ec2test.Instance{}
	for _, in := range fake.Instances() {
		byName[in.Tags["Name"]] = in
	}
	for _, name := range []string{"shop-prod-worker-1", "shop-prod-worker-2"} {
		in, ok := byName[name]
		if !ok || in.Tags[bootstrap.TagRole] != "worker" || in.Tags[bootstrap.TagServer] != name {
			t.Fatalf("%s: launched %v, tags %v", name, ok, in.Tags)
		}
	}
	groups, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: byName["shop-prod-worker-1"].SecurityGroupIDs})
	if err != nil || len(groups.SecurityGroups) != 1 {
		t.Fatalf("worker group: %v %v", groups, err)
	}
	g := groups.SecurityGroups[0]
	if aws.ToString(g.GroupName) != bootstrap.GroupName("shop", "prod", "worker") || aws.ToString(g.GroupName) != "jecloud-shop_prod.worker" {
		t.Errorf("worker group name %q", aws.ToString(g.GroupName))
	}
	for _, p := range g.IpPermissions {
		if aws.ToInt32(p.FromPort) != 22 {
			t.Errorf("the worker servers' group opens port %d", aws.ToInt32(p.FromPort))
		}
	}
	doc, _, err := st.Get(ctx, "shop", "prod")
	if err != nil {
		t.Fatal(err)
	}
	if doc.DesiredRoles["worker"] != 2 || doc.DesiredServers != 0 || len(doc.Servers) != 3 || doc.Servers[2].Role != "worker" {
		t.Errorf("document: desired_roles %v, desired_servers %d, servers %+v", doc.DesiredRoles, doc.DesiredServers, doc.Servers)
	}

	// Down to one worker: the newest worker goes, the web server stays.
	if err := scale("worker", 1); err != nil {
		t.Fatal(err)
	}
	state := func() map[string]string {
		m := map[string]string{}
		for _, in := range fake.Instances() {
			m[in.Tags["Name"]] = in.State
		}
		return m
	}
	if s := state(); s["shop-prod-worker-2"] == "running" || s["shop-prod-worker-2"] == "pending" || s["shop-prod-worker-1"] != "running" || s[""] != "running" {
		t.Errorf("after scale worker 1: %v", s)
	}
	// Down to none: allowed for a role other than web.
	if err := scale("worker", 0); err != nil {
		t.Fatal(err)
	}
	doc, _, _ = st.Get(ctx, "shop", "prod")
	names := []string{}
	for _, s := range doc.Servers {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, []string{"shop-prod-1"}) || doc.DesiredRoles["worker"] != 0 {
		t.Errorf("after scale worker 0: servers %v, desired_roles %v", names, doc.DesiredRoles)
	}
	if s := state(); s[""] != "running" {
		t.Errorf("the web server's instance: %v", s)
	}
	if err := scale("web", 0); err == nil || !strings.Contains(err.Error(), "at least 1 web server") {
		t.Errorf("scale web 0: %v", err)
	}
	if err := scale("Worker", 1); err == nil || !strings.Contains(err.Error(), `role "Worker"`) {
		t.Errorf("bad role: %v", err)
	}

	// destroy also deletes the worker servers' group.
	kh := o.SSH.KnownHostsFile()
	os.MkdirAll(filepath.Dir(kh), 0o700)
	os.WriteFile(kh, []byte("198.51.100.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDQv\nother.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDQv\n"), 0o600)
	// A group of the web servers' name, not made by JeCloud (no tags): left alone.
	untagged, err := api.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("jecloud-shop_prod"), Description: aws.String("by hand")})
	if err != nil {
		t.Fatal(err)
	}
	log.Reset()
	if err := bootstrap.Destroy(ctx, api, st, o); err != nil {
		t.Fatal(err)
	}
	for name, s := range state() {
		if s != "terminated" {
			t.Errorf("after destroy, %q is %s", name, s)
		}
	}
	doc, _, _ = st.Get(ctx, "shop", "prod")
	if len(doc.Servers) != 0 || doc.DesiredServers != 0 || doc.DesiredRoles != nil {
		t.Errorf("after destroy: servers %+v, desired_servers %d, desired_roles %v", doc.Servers, doc.DesiredServers, doc.DesiredRoles)
	}
	if b, err := os.ReadFile(kh); err != nil || string(b) != "other.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDQv\n" {
		t.Errorf("known_hosts after destroy: %q %v", b, err)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	slices.Sort(lines)
	if want := []string{"deleted security group jecloud-shop_prod.worker (sg-", "security group jecloud-shop_prod (" + aws.ToString(untagged.GroupId) + ") is not tagged for shop/prod: left alone", "terminating " + webID}; len(lines) != len(want) ||
		!strings.HasPrefix(lines[0], want[0]) || lines[1] != want[1] || lines[2] != want[2] {
		t.Errorf("destroy's log:\n%s", log.String())
	}
	left, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{{Name: aws.String("group-name"), Values: []string{"jecloud-shop_prod*"}}}})
	if err != nil || len(left.SecurityGroups) != 1 || aws.ToString(left.SecurityGroups[0].GroupId) != aws.ToString(untagged.GroupId) {
		t.Errorf("groups left after destroy (only the untagged one should be): %+v %v\n%s", left, err, log.String())
	}
}
