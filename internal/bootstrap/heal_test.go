package bootstrap_test

import (
	"bytes"
	"os"
	"path/filepath"
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

// TestHeal: Check finds a server whose instance failed its status check,
// one whose instance is gone, and (with a threshold) one whose report is
// stale, and leaves a healthy one and one still being made alone; Heal
// terminates the sick instance and launches a replacement under the same
// name and role (it stops at the console here: the fake's machines print
// no host keys); the Elastic IP moves to the replacement and is released
// by ReleaseAddresses.
func TestHeal(t *testing.T) {
	fake := ec2test.New(t, nil)
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
	launch := func(role string) string {
		t.Helper()
		run, err := api.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-0debian12amd64"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{
				{Key: aws.String(bootstrap.TagApp), Value: aws.String("shop")}, {Key: aws.String(bootstrap.TagEnv), Value: aws.String("prod")},
				{Key: aws.String(bootstrap.TagRole), Value: aws.String(role)}}}}})
		if err != nil {
			t.Fatal(err)
		}
		id := aws.ToString(run.Instances[0].InstanceId)
		if _, err := ec2.NewInstanceRunningWaiter(api, func(o *ec2.InstanceRunningWaiterOptions) { o.MinDelay = 10 * time.Millisecond }).
			WaitForOutput(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		return id
	}
	web, worker, gone := launch("web"), launch("worker"), launch("worker")
	now := time.Now().UTC()
	st.Update(ctx, "shop", "prod", func(e *globalstate.Env) error {
		e.Servers = []globalstate.Server{
			{Name: "shop-prod-1", Host: "198.51.100.1", Role: "web", User: "jecloud", InstanceID: web},
			{Name: "shop-prod-worker-1", Host: "198.51.100.2", Role: "worker", User: "jecloud", InstanceID: worker},
			{Name: "shop-prod-worker-2", Host: "198.51.100.3", Role: "worker", User: "jecloud", InstanceID: gone},
			{Name: "shop-prod-worker-3", Role: "worker", User: "jecloud", InstanceID: "i-0000000000000beef",
				Bootstrap: &globalstate.Bootstrap{Step: "booting", ClientToken: "t"}},
		}
		return nil
	})
	st.PutObservation(ctx, globalstate.ObservationKey("shop", "prod", "shop-prod-1"), &globalstate.Observed{CurrentVersion: "v1", Date: now.Add(-time.Minute)})
	st.PutObservation(ctx, globalstate.ObservationKey("shop", "prod", "shop-prod-worker-1"), &globalstate.Observed{CurrentVersion: "v1", Date: now.Add(-time.Hour)})

	// The Elastic IP on the web server.
	eip, err := bootstrap.EnsureAddress(ctx, api, st, o)
	if err != nil {
		t.Fatal(err)
	}
	if doc, _, _ := st.Get(ctx, "shop", "prod"); doc.Server("shop-prod-1").Host != eip {
		t.Fatalf("host of shop-prod-1 = %s, want the elastic IP %s", doc.Server("shop-prod-1").Host, eip)
	}

	api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{gone}})
	fake.Impair(web)
	reasons := func(stale time.Duration) map[string]string {
		t.Helper()
		sick, _, err := bootstrap.Check(ctx, api, st, o, stale, now)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, s := range sick {
			m[s.Server] = s.Reason
		}
		return m
	}
	d0, s0 := fake.Calls("DescribeInstances"), fake.Calls("DescribeInstanceStatus")
	got := reasons(0)
	if d, s := fake.Calls("DescribeInstances")-d0, fake.Calls("DescribeInstanceStatus")-s0; d != 1 || s != 1 {
		t.Errorf("Check of 3 instances made %d DescribeInstances and %d DescribeInstanceStatus calls, want one of each", d, s)
	}
	if len(got) != 2 || !strings.Contains(got["shop-prod-1"], "instance status check") ||
		!strings.Contains(got["shop-prod-worker-2"], "is shutting-down") && !strings.Contains(got["shop-prod-worker-2"], "is terminated") {
		t.Fatalf("Check without a report threshold = %v", got)
	}
	if got := reasons(10 * time.Minute); len(got) != 3 || !strings.Contains(got["shop-prod-worker-1"], "last report 1h0m0s old") {
		t.Fatalf("Check with 10m = %v", got)
	}

	sick, _, _ := bootstrap.Check(ctx, api, st, o, 0, now)
	_, err = bootstrap.Heal(ctx, api, st, o, sick[:1]) // the web server
	if err == nil || !strings.Contains(err.Error(), "shop-prod-1") {
		t.Fatalf("Heal: %v, want it to stop at the console of the replacement", err)
	}
	doc, _, _ := st.Get(ctx, "shop", "prod")
	s := doc.Server("shop-prod-1")
	if s == nil || s.InstanceID == "" || s.InstanceID == web || s.Role != "web" || s.Bootstrap == nil {
		t.Fatalf("shop-prod-1 after Heal = %+v, want a new instance being made", s)
	}
	byID := map[string]ec2test.Instance{}
	for _, in := range fake.Instances() {
		byID[in.ID] = in
	}
	if st := byID[web].State; st != "terminated" && st != "shutting-down" {
		t.Fatalf("old web instance %s is %s", web, st)
	}
	if n := byID[s.InstanceID]; n.Tags[bootstrap.TagRole] != "web" || n.InstanceProfile != byID[web].InstanceProfile || len(n.UserData) == 0 {
		t.Fatalf("replacement %+v: want role web, the same profile, user-data", n)
	}
	if !strings.Contains(log.String(), "shop-prod-1: replacing "+web) {
		t.Fatalf("log:\n%s", log.String())
	}
	// Made at last (as if jeagent was installed): the EIP moves to it.
	st.Update(ctx, "shop", "prod", func(e *globalstate.Env) error {
		e.Server("shop-prod-1").Bootstrap = nil
		return nil
	})
	if got, err := bootstrap.EnsureAddress(ctx, api, st, o); err != nil || got != eip {
		t.Fatalf("EnsureAddress after heal = %s, %v; want %s", got, err, eip)
	}
	if fake.Address(eip) == "" {
		t.Fatalf("elastic IP %s not associated with the replacement", eip)
	}
	if err := bootstrap.ReleaseAddresses(ctx, api, o); err != nil {
		t.Fatal(err)
	}
	if len(fake.Addresses()) != 0 {
		t.Fatalf("addresses after release: %v", fake.Addresses())
	}
}
