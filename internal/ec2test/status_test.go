package ec2test_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestDescribeInstanceStatus: running instances only (all with
// IncludeAllInstances), ok until Impair, then the instance check fails
// and a filter on it finds the instance; unknown IDs and filters fail.
func TestDescribeInstanceStatus(t *testing.T) {
	srv, c := start(t, &launcher{})
	ctx := context.Background()
	a := aws.ToString(run(t, c, nil).InstanceId)
	b := aws.ToString(run(t, c, nil).InstanceId)
	waitRunning(t, c, a)
	waitRunning(t, c, b)
	status := func(in *ec2.DescribeInstanceStatusInput) map[string]string {
		t.Helper()
		out, err := c.DescribeInstanceStatus(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, s := range out.InstanceStatuses {
			m[aws.ToString(s.InstanceId)] = string(s.InstanceState.Name) + "/" + string(s.SystemStatus.Status) + "/" + string(s.InstanceStatus.Status)
		}
		return m
	}
	if got := status(&ec2.DescribeInstanceStatusInput{}); got[a] != "running/ok/ok" || got[b] != "running/ok/ok" || len(got) != 2 {
		t.Fatalf("status = %v, want both running/ok/ok", got)
	}
	srv.Impair(a)
	if got := status(&ec2.DescribeInstanceStatusInput{InstanceIds: []string{a}}); got[a] != "running/ok/impaired" {
		t.Fatalf("after Impair: %v", got)
	}
	got := status(&ec2.DescribeInstanceStatusInput{Filters: []types.Filter{{Name: aws.String("instance-status.status"), Values: []string{"impaired"}}}})
	if len(got) != 1 || got[a] == "" {
		t.Fatalf("filter impaired: %v, want %s only", got, a)
	}
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{b}}); err != nil {
		t.Fatal(err)
	}
	ec2.NewInstanceTerminatedWaiter(c, fastTerminated).Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{b}}, 5e9)
	if got := status(&ec2.DescribeInstanceStatusInput{}); len(got) != 1 || got[b] != "" {
		t.Fatalf("terminated %s still listed by default: %v", b, got)
	}
	if got := status(&ec2.DescribeInstanceStatusInput{IncludeAllInstances: aws.Bool(true)}); got[b] != "terminated/not-applicable/not-applicable" {
		t.Fatalf("IncludeAllInstances: %v", got)
	}
	for _, tc := range []struct {
		in   *ec2.DescribeInstanceStatusInput
		code string
	}{
		{&ec2.DescribeInstanceStatusInput{InstanceIds: []string{"i-0000000000000dead"}}, "InvalidInstanceID.NotFound"},
		{&ec2.DescribeInstanceStatusInput{Filters: []types.Filter{{Name: aws.String("colour"), Values: []string{"x"}}}}, "InvalidParameterValue"},
		{&ec2.DescribeInstanceStatusInput{MaxResults: aws.Int32(2)}, "InvalidParameterValue"},
	} {
		if _, err := c.DescribeInstanceStatus(ctx, tc.in); code(err) != tc.code {
			t.Errorf("%+v: %v, want %s", tc.in, err, tc.code)
		}
	}
}

// TestElasticIP: allocate (tagged), associate (the instance's public IP
// becomes the EIP; Address resolves it to the machine's own), move to
// another instance only with AllowReassociation, release refused while in
// use, dropped on termination of the instance, then released.
func TestElasticIP(t *testing.T) {
	srv, c := start(t, &launcher{})
	ctx := context.Background()
	a := aws.ToString(run(t, c, nil).InstanceId)
	b := aws.ToString(run(t, c, nil).InstanceId)
	waitRunning(t, c, a)
	waitRunning(t, c, b)
	alloc, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc,
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeElasticIp, Tags: sdkTags(map[string]string{"jecloud:app": "shop"})}}})
	if err != nil {
		t.Fatal(err)
	}
	eip, id := aws.ToString(alloc.PublicIp), aws.ToString(alloc.AllocationId)
	if srv.Address(eip) != "" {
		t.Fatalf("Address(%s) before association = %q", eip, srv.Address(eip))
	}
	as, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: &id, InstanceId: &a})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(waitRunning(t, c, a).PublicIpAddress); got != eip {
		t.Fatalf("public IP of %s = %s, want the EIP %s", a, got, eip)
	}
	if got := srv.Address(eip); got != publicIP {
		t.Fatalf("Address(%s) = %q, want the machine's %s", eip, got, publicIP)
	}
	if _, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: &id, InstanceId: &b}); code(err) != "Resource.AlreadyAssociated" {
		t.Fatalf("reassociate without AllowReassociation: %v", err)
	}
	if _, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: &id, InstanceId: &b, AllowReassociation: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(waitRunning(t, c, a).PublicIpAddress); got != publicIP {
		t.Fatalf("%s kept %s after the EIP moved, want its own %s back", a, got, publicIP)
	}
	out, err := c.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: []types.Filter{{Name: aws.String("tag:jecloud:app"), Values: []string{"shop"}}}})
	if err != nil || len(out.Addresses) != 1 || aws.ToString(out.Addresses[0].InstanceId) != b || tagMap(out.Addresses[0].Tags)["jecloud:app"] != "shop" {
		t.Fatalf("DescribeAddresses = %+v, %v; want the EIP on %s, tagged", out, err, b)
	}
	if _, err := c.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: &id}); code(err) != "InvalidIPAddress.InUse" {
		t.Fatalf("release in use: %v", err)
	}
	if _, err := c.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: as.AssociationId}); code(err) != "InvalidAssociationID.NotFound" {
		t.Fatalf("disassociate the old association: %v", err)
	}
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{b}}); err != nil {
		t.Fatal(err)
	}
	ec2.NewInstanceTerminatedWaiter(c, fastTerminated).Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{b}}, 5e9)
	if _, err := c.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: &id}); err != nil {
		t.Fatalf("release after the instance ended: %v", err)
	}
	for _, tc := range []struct {
		name string
		err  error
		code string
	}{
		{"release twice", second(c.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: &id})), "InvalidAllocationID.NotFound"},
		{"describe unknown", second(c.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{PublicIps: []string{"198.51.100.9"}})), "InvalidAddress.NotFound"},
		{"associate no instance", second(c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: &id})), "MissingParameter"},
		{"allocate standard", second(c.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: types.DomainTypeStandard})), "InvalidParameterValue"},
	} {
		if code(tc.err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, tc.err, tc.code)
		}
	}
	for i := range 6 {
		_, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
		if want := i == 5; want != (code(err) == "AddressLimitExceeded") {
			t.Fatalf("allocation %d: %v (quota is 5)", i+1, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }
