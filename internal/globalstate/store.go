package globalstate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/jecloud/jecloud/internal/state"
)

// API is what the store needs of an S3 client (*s3.Client has it).
type API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Store is the global state in one bucket.
type Store struct {
	S3     API
	Bucket string
	// Owner is the account ID that must own the bucket ("" skips the
	// check): every request carries it as the expected bucket owner.
	Owner string
	// MaxAttempts bounds the compare-and-swap retries of Update (default 30).
	MaxAttempts int
}

// ErrConflict is returned by Update when other writers kept winning.
var ErrConflict = errors.New("the state kept changing under this update")

// Key is the object of an app environment's document.
func Key(app, env string) string { return "envs/" + app + "/" + env + ".json" }

// URL names an app environment's document in messages.
func (s *Store) URL(app, env string) string { return "s3://" + s.Bucket + "/" + Key(app, env) }

// ExpectedOwner is the ExpectedBucketOwner of every request to the
// bucket (nil when Owner is empty).
func (s *Store) ExpectedOwner() *string {
	if s.Owner == "" {
		return nil
	}
	return aws.String(s.Owner)
}

// Get reads an app environment's document and its ETag. A document that
// does not exist yet comes back empty (App and Env set) with etag "".
func (s *Store) Get(ctx context.Context, app, env string) (*Env, string, error) {
	out, err := s.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: aws.String(Key(app, env)), ExpectedBucketOwner: s.ExpectedOwner()})
	if err != nil {
		if NotFound(err) {
			return &Env{App: app, Env: env}, "", nil
		}
		return nil, "", fmt.Errorf("reading %s: %w", s.URL(app, env), err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, 16<<20))
	if err != nil {
		return nil, "", fmt.Errorf("reading %s: %w", s.URL(app, env), err)
	}
	var e Env
	if err := state.Decode(s.URL(app, env), data, &e); err != nil {
		return nil, "", fmt.Errorf("%w (fix it with `jepush state:edit %s`)", err, env)
	}
	if e.App != app || e.Env != env {
		return nil, "", fmt.Errorf("%s names app %q, environment %q: set \"app\": %q, \"env\": %q", s.URL(app, env), e.App, e.Env, app, env)
	}
	return &e, aws.ToString(out.ETag), nil
}

// Update applies fn to the newest document and writes it back only if
// nobody else wrote in between; else it reads again and retries, with a
// randomised backoff. fn may run several times and must only change the
// document it is given. An error from fn stops the update unwritten.
func (s *Store) Update(ctx context.Context, app, env string, fn func(*Env) error) (*Env, error) {
	attempts := s.MaxAttempts
	if attempts <= 0 {
		attempts = 30
	}
	for i := 0; i < attempts; i++ {
		e, etag, err := s.Get(ctx, app, env)
		if err != nil {
			return nil, err
		}
		if err := fn(e); err != nil {
			return nil, err
		}
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", s.URL(app, env), err)
		}
		body, err := json.MarshalIndent(e, "", "  ")
		if err != nil {
			return nil, err
		}
		in := &s3.PutObjectInput{
			Bucket: &s.Bucket, Key: aws.String(Key(app, env)), Body: bytes.NewReader(append(body, '\n')),
			ContentType: aws.String("application/json"), ExpectedBucketOwner: s.ExpectedOwner(),
		}
		if etag == "" {
			in.IfNoneMatch = aws.String("*")
		} else {
			in.IfMatch = aws.String(etag)
		}
		_, err = s.S3.PutObject(ctx, in)
		if err == nil {
			return e, nil
		}
		if !conflict(err) {
			return nil, fmt.Errorf("writing %s: %w", s.URL(app, env), err)
		}
		// Someone else wrote first: wait a little (longer each time, at
		// random so that racing writers spread out) and start over.
		d := time.Duration(rand.Int64N(int64(10*time.Millisecond) << min(i, 6)))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(d):
		}
	}
	return nil, fmt.Errorf("%s: %w (%d attempts): try again", s.URL(app, env), ErrConflict, attempts)
}

// conflict reports a lost compare-and-swap: 412 Precondition Failed, or
// 409 ConditionalRequestConflict (S3 refusing concurrent conditional writes).
func conflict(err error) bool {
	switch httpStatus(err) {
	case http.StatusPreconditionFailed, http.StatusConflict:
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "PreconditionFailed" || ae.ErrorCode() == "ConditionalRequestConflict")
}

// NotFound reports an S3 answer 404 (a missing key).
func NotFound(err error) bool { return httpStatus(err) == http.StatusNotFound }

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// GetObservation reads the observation object at key (nil when there is none).
func (s *Store) GetObservation(ctx context.Context, key string) (*Observed, error) {
	out, err := s.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: &key, ExpectedBucketOwner: s.ExpectedOwner()})
	if NotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading s3://%s/%s: %w", s.Bucket, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading s3://%s/%s: %w", s.Bucket, key, err)
	}
	var o Observed
	if err := state.Decode("s3://"+s.Bucket+"/"+key, data, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// PutObservation writes a server's observation object: only that server
// writes it, so a plain write.
func (s *Store) PutObservation(ctx context.Context, key string, o *Observed) error {
	body, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return err
	}
	_, err = s.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.Bucket, Key: &key, Body: bytes.NewReader(append(body, '\n')),
		ContentType: aws.String("application/json"), ExpectedBucketOwner: s.ExpectedOwner()})
	if err != nil {
		return fmt.Errorf("writing s3://%s/%s: %w", s.Bucket, key, err)
	}
	return nil
}

// Observe sets each server's Observed from its observation object, when
// it has one (an older agent's report in the document stands otherwise).
func (s *Store) Observe(ctx context.Context, e *Env) error {
	for i := range e.Servers {
		o, err := s.GetObservation(ctx, e.ObservationOf(&e.Servers[i]))
		if err != nil {
			return err
		}
		if o != nil {
			e.Servers[i].Observed = o
		}
	}
	return nil
}
