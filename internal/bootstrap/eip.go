package bootstrap

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/ssh"

	"github.com/jecloud/jecloud/internal/globalstate"
	"github.com/jecloud/jecloud/internal/placement"
)

// AddressAPI is what the Elastic IP of an environment needs beyond EC2.
type AddressAPI interface {
	EC2
	AllocateAddress(context.Context, *ec2.AllocateAddressInput, ...func(*ec2.Options)) (*ec2.AllocateAddressOutput, error)
	DescribeAddresses(context.Context, *ec2.DescribeAddressesInput, ...func(*ec2.Options)) (*ec2.DescribeAddressesOutput, error)
	AssociateAddress(context.Context, *ec2.AssociateAddressInput, ...func(*ec2.Options)) (*ec2.AssociateAddressOutput, error)
	DisassociateAddress(context.Context, *ec2.DisassociateAddressInput, ...func(*ec2.Options)) (*ec2.DisassociateAddressOutput, error)
	ReleaseAddress(context.Context, *ec2.ReleaseAddressInput, ...func(*ec2.Options)) (*ec2.ReleaseAddressOutput, error)
}

// addresses returns the Elastic IPs tagged for the environment.
func addresses(ctx context.Context, api AddressAPI, app, env string) ([]types.Address, error) {
	out, err := api.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: []types.Filter{
		{Name: aws.String("tag:" + TagApp), Values: []string{app}},
		{Name: aws.String("tag:" + TagEnv), Values: []string{env}},
	}})
	if err != nil {
		return nil, fmt.Errorf("elastic IPs of %s/%s: %w", app, env, err)
	}
	return out.Addresses, nil
}

// EnsureAddress gives the environment's one web server the environment's
// Elastic IP: allocated (tagged jecloud:app and jecloud:env) the first
// time, associated with the server's instance, or moved to it from the
// instance it replaced. The server's host in the global state becomes the
// instance's public address as EC2 then reports it (the Elastic IP), and
// the host keys are recorded for it. It returns the Elastic IP.
func EnsureAddress(ctx context.Context, api AddressAPI, st *globalstate.Store, o Options) (string, error) {
	o.defaults()
	e, _, err := st.Get(ctx, o.App, o.Env)
	if err != nil {
		return "", err
	}
	var web []globalstate.Server
	for _, s := range e.Servers {
		if s.RoleOrWeb() == placement.Web && s.InstanceID != "" && s.Ready() {
			web = append(web, s)
		}
	}
	if len(web) != 1 {
		return "", fmt.Errorf("elastic_ip: %s/%s has %d ready web servers made by jepush; an Elastic IP is for an environment of one", o.App, o.Env, len(web))
	}
	s := web[0]
	have, err := addresses(ctx, api, o.App, o.Env)
	if err != nil {
		return "", err
	}
	var a types.Address
	switch len(have) {
	case 0:
		out, err := api.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc,
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeElasticIp, Tags: []types.Tag{
				{Key: aws.String(TagApp), Value: aws.String(o.App)}, {Key: aws.String(TagEnv), Value: aws.String(o.Env)},
				{Key: aws.String("Name"), Value: aws.String(o.App + "-" + o.Env)}}}}})
		if err != nil {
			return "", fmt.Errorf("allocating an elastic IP for %s/%s: %w", o.App, o.Env, err)
		}
		a = types.Address{AllocationId: out.AllocationId, PublicIp: out.PublicIp}
		fmt.Fprintf(o.Log, "%s/%s: elastic IP %s allocated (%s)\n", o.App, o.Env, aws.ToString(a.PublicIp), aws.ToString(a.AllocationId))
	case 1:
		a = have[0]
	default:
		return "", fmt.Errorf("%s/%s has %d elastic IPs tagged %s=%s, %s=%s; keep one (aws ec2 release-address)", o.App, o.Env, len(have), TagApp, o.App, TagEnv, o.Env)
	}
	eip := aws.ToString(a.PublicIp)
	if aws.ToString(a.InstanceId) != s.InstanceID {
		if _, err := api.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: a.AllocationId, InstanceId: aws.String(s.InstanceID),
			AllowReassociation: aws.Bool(true)}); err != nil {
			return "", fmt.Errorf("associating elastic IP %s with %s (%s): %w", eip, s.Name, s.InstanceID, err)
		}
		fmt.Fprintf(o.Log, "%s: elastic IP %s associated with %s\n", s.Name, eip, s.InstanceID)
	}
	in, err := describe(ctx, api, s.InstanceID)
	if err != nil {
		return "", err
	}
	if in == nil || aws.ToString(in.PublicIpAddress) == "" {
		return "", fmt.Errorf("%s (%s) has no public address after the association of %s", s.Name, s.InstanceID, eip)
	}
	host := aws.ToString(in.PublicIpAddress)
	if host != s.Host {
		if err := recordHost(ctx, st, o, s, host); err != nil {
			return "", err
		}
	}
	return eip, nil
}

// recordHost moves server s to host: the state and known_hosts.
func recordHost(ctx context.Context, st *globalstate.Store, o Options, s globalstate.Server, host string) error {
	var keys []ssh.PublicKey
	for _, l := range s.HostKeys {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(l))
		if err != nil {
			return fmt.Errorf("host key %q in %s: %w", l, st.URL(o.App, o.Env), err)
		}
		keys = append(keys, k)
	}
	if err := RecordHostKeys(o.SSH.KnownHostsFile(), host, keys, "jecloud:"+o.App+"/"+o.Env+"/"+s.Name); err != nil {
		return err
	}
	_, err := st.Update(ctx, o.App, o.Env, func(e *globalstate.Env) error {
		if r := e.Server(s.Name); r != nil && r.InstanceID == s.InstanceID {
			r.Host = host
		}
		return nil
	})
	return err
}

// ReleaseAddresses disassociates and releases the Elastic IPs tagged for
// the environment (`jepush destroy`).
func ReleaseAddresses(ctx context.Context, api AddressAPI, o Options) error {
	o.defaults()
	have, err := addresses(ctx, api, o.App, o.Env)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range have {
		if a.AssociationId != nil {
			if _, err := api.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: a.AssociationId}); err != nil && !isCode(err, "InvalidAssociationID.NotFound") {
				errs = append(errs, fmt.Errorf("disassociating elastic IP %s: %w", aws.ToString(a.PublicIp), err))
				continue
			}
		}
		if _, err := api.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: a.AllocationId}); err != nil {
			errs = append(errs, fmt.Errorf("releasing elastic IP %s: %w", aws.ToString(a.PublicIp), err))
			continue
		}
		fmt.Fprintf(o.Log, "%s/%s: elastic IP %s released\n", o.App, o.Env, aws.ToString(a.PublicIp))
	}
	return errors.Join(errs...)
}
