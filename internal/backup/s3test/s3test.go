// Package s3test runs a real S3 server for tests: versitygw (a Go S3
// gateway over a directory) on an address the test chooses.
package s3test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Server is a running versitygw with one bucket.
type Server struct {
	Endpoint, Bucket, AccessKey, SecretKey string
}

// Binary finds versitygw: $JECLOUD_VERSITYGW, /var/cache/jecloud-tools/bin
// (scripts/setup.sh installs it there), or PATH. Without it the test is
// skipped, except in CI, where it fails.
func Binary(t testing.TB) string {
	for _, p := range []string{os.Getenv("JECLOUD_VERSITYGW"), "/var/cache/jecloud-tools/bin/versitygw"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	msg := "no versitygw: run scripts/setup.sh or `GOBIN=/var/cache/jecloud-tools/bin go install github.com/versity/versitygw/cmd/versitygw@v1.8.0`"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Start runs versitygw on host (an IP address; a free port is chosen)
// until the test ends, and creates a bucket.
func Start(t testing.TB, host string) *Server {
	bin := Binary(t)
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	srv := &Server{Endpoint: "http://" + addr, Bucket: "jecloud-test", AccessKey: "jecloudtest", SecretKey: "jecloudtestsecret"}
	cmd := exec.Command(bin, "--port", addr, "posix", dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+srv.AccessKey, "ROOT_SECRET_KEY="+srv.SecretKey)
	logf, err := os.Create(filepath.Join(t.TempDir(), "versitygw.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	c := srv.Client(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(srv.Bucket)})
		cancel()
		if err == nil {
			return srv
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("versitygw on %s: %v\n%s", addr, err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Client returns an S3 client of the server's root user.
func (s *Server) Client(t testing.TB) *s3.Client {
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")))
	if err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(s.Endpoint)
		o.UsePathStyle = true
	})
}

// Env is sys/backup.env for this server.
func (s *Server) Env() string {
	return fmt.Sprintf("AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", s.AccessKey, s.SecretKey)
}
