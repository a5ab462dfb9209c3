package globalstate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// BucketAPI is what finding and creating the state bucket needs of an S3
// client (*s3.Client has it).
type BucketAPI interface {
	ListBuckets(ctx context.Context, in *s3.ListBucketsInput, opts ...func(*s3.Options)) (*s3.ListBucketsOutput, error)
	CreateBucket(ctx context.Context, in *s3.CreateBucketInput, opts ...func(*s3.Options)) (*s3.CreateBucketOutput, error)
	PutPublicAccessBlock(ctx context.Context, in *s3.PutPublicAccessBlockInput, opts ...func(*s3.Options)) (*s3.PutPublicAccessBlockOutput, error)
	DeleteBucket(ctx context.Context, in *s3.DeleteBucketInput, opts ...func(*s3.Options)) (*s3.DeleteBucketOutput, error)
}

// BucketPrefix starts the name of every state bucket; the region and a
// random part follow: jecloud-state-eu-west-1-3f9c2a71d0e4.
const BucketPrefix = "jecloud-state-"

// FindBucket returns the account's state bucket for region, "" if there is
// none. ListBuckets lists only the caller's own buckets, so a bucket a
// stranger made under a guessable name is never picked up.
func FindBucket(ctx context.Context, c BucketAPI, region string) (string, error) {
	all, err := stateBuckets(ctx, c, region)
	if err != nil || len(all) == 0 {
		return "", err
	}
	return all[0], nil
}

func stateBuckets(ctx context.Context, c BucketAPI, region string) ([]string, error) {
	prefix := BucketPrefix + region + "-"
	var found []string
	in := &s3.ListBucketsInput{Prefix: aws.String(prefix)}
	for {
		out, err := c.ListBuckets(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("listing your S3 buckets: %w", err)
		}
		for _, b := range out.Buckets {
			if name := aws.ToString(b.Name); strings.HasPrefix(name, prefix) {
				found = append(found, name)
			}
		}
		if aws.ToString(out.ContinuationToken) == "" {
			break
		}
		in.ContinuationToken = out.ContinuationToken
	}
	sort.Strings(found) // two laptops that both made one agree on the first
	return found, nil
}

// EnsureBucket returns the account's state bucket for region, creating it
// when there is none: a name with 48 random bits (nobody can take it
// first), objects owned by the bucket owner (ACLs off), all public access
// blocked. When two clients create one at the same moment, both keep the
// first by name and the other is deleted (it is empty).
func EnsureBucket(ctx context.Context, c BucketAPI, region string, log io.Writer) (string, error) {
	if name, err := FindBucket(ctx, c, region); err != nil || name != "" {
		return name, err
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	name := BucketPrefix + region + "-" + hex.EncodeToString(rnd[:])
	in := &s3.CreateBucketInput{Bucket: &name, ObjectOwnership: types.ObjectOwnershipBucketOwnerEnforced}
	if region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(region)}
	}
	if _, err := c.CreateBucket(ctx, in); err != nil {
		return "", fmt.Errorf("creating the state bucket %s: %w", name, err)
	}
	if _, err := c.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{Bucket: &name,
		PublicAccessBlockConfiguration: &types.PublicAccessBlockConfiguration{
			BlockPublicAcls: aws.Bool(true), IgnorePublicAcls: aws.Bool(true),
			BlockPublicPolicy: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true),
		}}); err != nil && !notImplemented(err) {
		return "", fmt.Errorf("blocking public access to %s: %w", name, err)
	}
	all, err := stateBuckets(ctx, c, region)
	if err != nil {
		return "", err
	}
	if len(all) > 0 && all[0] != name {
		c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &name})
		return all[0], nil
	}
	fmt.Fprintf(log, "created the state bucket s3://%s (private, region %s)\n", name, region)
	return name, nil
}

// notImplemented: S3-compatible servers without public access settings
// (they have no public access to block either).
func notImplemented(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "NotImplemented"
}
