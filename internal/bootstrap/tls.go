package bootstrap

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/jecloud/jecloud/internal/lines"
)

// TLS at the balancer (docs/routing.md: why there and not at the
// servers): a public ACM certificate for the environment's domains,
// validated by DNS (jepush prints the CNAME records to add), and, once
// ACM has issued it, an HTTPS listener (443) that uses it.

// ACM is what TLS at the balancer needs of an ACM client (*acm.Client has it).
type ACM interface {
	RequestCertificate(context.Context, *acm.RequestCertificateInput, ...func(*acm.Options)) (*acm.RequestCertificateOutput, error)
	DescribeCertificate(context.Context, *acm.DescribeCertificateInput, ...func(*acm.Options)) (*acm.DescribeCertificateOutput, error)
	ListCertificates(context.Context, *acm.ListCertificatesInput, ...func(*acm.Options)) (*acm.ListCertificatesOutput, error)
	ListTagsForCertificate(context.Context, *acm.ListTagsForCertificateInput, ...func(*acm.Options)) (*acm.ListTagsForCertificateOutput, error)
	DeleteCertificate(context.Context, *acm.DeleteCertificateInput, ...func(*acm.Options)) (*acm.DeleteCertificateOutput, error)
}

// ValidationRecord is a DNS record ACM wants before it issues a certificate.
type ValidationRecord struct{ Domain, Name, Type, Value string }

// certificates returns app/env's certificates (tagged for it), pending or issued.
func certificates(ctx context.Context, api ACM, app, env string) ([]acmtypes.CertificateSummary, error) {
	out, err := api.ListCertificates(ctx, &acm.ListCertificatesInput{CertificateStatuses: []acmtypes.CertificateStatus{
		acmtypes.CertificateStatusPendingValidation, acmtypes.CertificateStatusIssued}})
	if err != nil {
		return nil, fmt.Errorf("ACM certificates: %w", err)
	}
	var mine []acmtypes.CertificateSummary
	for _, c := range out.CertificateSummaryList {
		tags, err := api.ListTagsForCertificate(ctx, &acm.ListTagsForCertificateInput{CertificateArn: c.CertificateArn})
		if err != nil {
			return nil, fmt.Errorf("tags of ACM certificate %s: %w", aws.ToString(c.CertificateArn), err)
		}
		m := map[string]string{}
		for _, t := range tags.Tags {
			m[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		if m[TagApp] == app && m[TagEnv] == env {
			mine = append(mine, c)
		}
	}
	return mine, nil
}

// EnsureTLS gives the balancer an HTTPS listener for domains (sorted, not
// empty): it requests an ACM certificate for them if the environment has
// none for exactly these names, and returns the DNS records ACM waits
// for while it is pending; once it is issued (a later push), it opens 443
// in the balancer's security group and adds the HTTPS listener. When the
// domains change, the listener keeps its certificate until the one for
// the new names is issued, then takes it, and the environment's other
// certificates are deleted.
func (b *Balancer) EnsureTLS(ctx context.Context, api EC2, certs ACM, o Options, domains []string) ([]ValidationRecord, error) {
	o.defaults()
	if len(domains) == 0 {
		return nil, nil
	}
	ls, err := b.elb.DescribeListeners(ctx, &elb.DescribeListenersInput{LoadBalancerArn: aws.String(b.LoadBalancerArn)})
	if err != nil {
		return nil, fmt.Errorf("listeners of %s: %w", b.Name, err)
	}
	var https *elbtypes.Listener
	if i := slices.IndexFunc(ls.Listeners, func(l elbtypes.Listener) bool { return aws.ToInt32(l.Port) == 443 }); i >= 0 {
		https = &ls.Listeners[i]
		if len(https.Certificates) > 0 {
			// The usual push: one call to see that nothing changed.
			in := aws.ToString(https.Certificates[0].CertificateArn)
			d, err := certs.DescribeCertificate(ctx, &acm.DescribeCertificateInput{CertificateArn: aws.String(in)})
			if err != nil {
				return nil, fmt.Errorf("ACM certificate %s of %s: %w", in, b.Name, err)
			}
			names := slices.Clone(d.Certificate.SubjectAlternativeNames)
			slices.Sort(names)
			if slices.Equal(names, domains) {
				return nil, nil
			}
		}
	}
	have, err := certificates(ctx, certs, o.App, o.Env)
	if err != nil {
		return nil, err
	}
	var arn string
	for _, c := range have {
		names := slices.Clone(c.SubjectAlternativeNameSummaries)
		slices.Sort(names)
		if slices.Equal(names, domains) {
			arn = aws.ToString(c.CertificateArn)
		}
	}
	if arn == "" {
		out, err := certs.RequestCertificate(ctx, &acm.RequestCertificateInput{DomainName: aws.String(domains[0]), SubjectAlternativeNames: domains,
			ValidationMethod: acmtypes.ValidationMethodDns, Tags: []acmtypes.Tag{{Key: aws.String(TagApp), Value: aws.String(o.App)}, {Key: aws.String(TagEnv), Value: aws.String(o.Env)}}})
		if err != nil {
			return nil, fmt.Errorf("requesting an ACM certificate for %s: %w", strings.Join(domains, ", "), err)
		}
		arn = aws.ToString(out.CertificateArn)
		fmt.Fprintf(o.Log, "requested an ACM certificate for %s\n", strings.Join(domains, ", "))
	}
	d, err := certs.DescribeCertificate(ctx, &acm.DescribeCertificateInput{CertificateArn: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("ACM certificate %s: %w", arn, err)
	}
	if d.Certificate.Status != acmtypes.CertificateStatusIssued {
		var recs []ValidationRecord
		for _, v := range d.Certificate.DomainValidationOptions {
			if r := v.ResourceRecord; r != nil {
				recs = append(recs, ValidationRecord{Domain: lines.Printable(aws.ToString(v.DomainName)), Name: lines.Printable(aws.ToString(r.Name)),
					Type: lines.Printable(string(r.Type)), Value: lines.Printable(aws.ToString(r.Value))})
			}
		}
		return recs, nil
	}
	if https != nil {
		if _, err := b.elb.ModifyListener(ctx, &elb.ModifyListenerInput{ListenerArn: https.ListenerArn,
			Certificates: []elbtypes.Certificate{{CertificateArn: aws.String(arn)}}}); err != nil {
			return nil, fmt.Errorf("giving the HTTPS listener of %s the certificate for %s: %w", b.Name, strings.Join(domains, ", "), err)
		}
		fmt.Fprintf(o.Log, "load balancer %s: HTTPS:443 now uses the ACM certificate for %s\n", b.Name, strings.Join(domains, ", "))
		// The certificates for older sets of names, now unused. One
		// that cannot go yet (AWS may still see it in use) stays until
		// the next change, or destroy.
		for _, c := range have {
			if aws.ToString(c.CertificateArn) == arn {
				continue
			}
			if _, err := certs.DeleteCertificate(ctx, &acm.DeleteCertificateInput{CertificateArn: c.CertificateArn}); err != nil {
				fmt.Fprintf(o.Log, "note: the ACM certificate for %s was not deleted: %v\n", aws.ToString(c.DomainName), err)
				continue
			}
			fmt.Fprintf(o.Log, "deleted the ACM certificate for %s\n", aws.ToString(c.DomainName))
		}
		return nil, nil
	}
	gname := balancerGroupName(o.App, o.Env)
	gs, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{{Name: aws.String("group-name"), Values: []string{gname}}}})
	if err != nil || len(gs.SecurityGroups) != 1 {
		return nil, fmt.Errorf("security group %s: %d found, %v", gname, len(gs.SecurityGroups), err)
	}
	_, err = api.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: gs.SecurityGroups[0].GroupId, IpPermissions: []types.IpPermission{{
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}})
	if err != nil && !isCode(err, "InvalidPermission.Duplicate") {
		return nil, fmt.Errorf("security group %s: HTTPS from everywhere: %w", gname, err)
	}
	if _, err := b.elb.CreateListener(ctx, &elb.CreateListenerInput{
		LoadBalancerArn: aws.String(b.LoadBalancerArn), Protocol: elbtypes.ProtocolEnumHttps, Port: aws.Int32(443),
		Certificates:   []elbtypes.Certificate{{CertificateArn: aws.String(arn)}},
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(b.TargetGroupArn)}},
		Tags:           elbTags(o.App, o.Env),
	}); err != nil {
		return nil, fmt.Errorf("creating the HTTPS listener of %s: %w", b.Name, err)
	}
	fmt.Fprintf(o.Log, "load balancer %s listens on HTTPS:443 with the ACM certificate for %s\n", b.Name, strings.Join(domains, ", "))
	return nil, nil
}

// deleteCertificates deletes app/env's ACM certificates (after its
// balancer: a certificate in use cannot go).
func deleteCertificates(ctx context.Context, api ACM, o Options) error {
	have, err := certificates(ctx, api, o.App, o.Env)
	if err != nil {
		return err
	}
	for _, c := range have {
		if _, err := api.DeleteCertificate(ctx, &acm.DeleteCertificateInput{CertificateArn: c.CertificateArn}); err != nil {
			return fmt.Errorf("deleting ACM certificate for %s: %w", aws.ToString(c.DomainName), err)
		}
		fmt.Fprintf(o.Log, "deleted ACM certificate for %s\n", aws.ToString(c.DomainName))
	}
	return nil
}

// DestroyTLS deletes app/env's ACM certificates; call it after
// DestroyBalancer.
func DestroyTLS(ctx context.Context, api ACM, o Options) error {
	o.defaults()
	return deleteCertificates(ctx, api, o)
}
