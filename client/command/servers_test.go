package command

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jecloud/jecloud/internal/backup/s3test"
	"github.com/jecloud/jecloud/internal/ec2test"
	"github.com/jecloud/jecloud/internal/globalstate"
)

// TestServersJSONShowsObservations: since issue #17 each server reports
// to an object of its own (its role may write nothing else), not into the
// document. `jepush servers --json` printed the document alone, so it
// showed no server's report (or an old one an older agent had written
// into the document). It must show each server's observation object.
func TestServersJSONShowsObservations(t *testing.T) {
	fake := ec2test.New(t, nil)
	s3 := s3test.Start(t, "127.0.0.1")
	fake.Account = s3.AccessKey // versitygw's bucket owner is the access key
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": s3.AccessKey, "AWS_SECRET_ACCESS_KEY": s3.SecretKey, "AWS_REGION": "us-east-1",
		"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_ENDPOINT_URL_EC2": fake.URL, "AWS_ENDPOINT_URL_STS": fake.URL, "AWS_ENDPOINT_URL_IAM": fake.URL, "AWS_ENDPOINT_URL_S3": s3.Endpoint,
		"AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2": fake.URL, "AWS_ENDPOINT_URL_ACM": fake.URL,
		"HOME": t.TempDir(),
	} {
		t.Setenv(k, v)
	}
	ctx := context.Background()
	c := s3.Client(t)
	bucket, err := globalstate.EnsureBucket(ctx, c, "us-east-1", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	st := &globalstate.Store{S3: c, Bucket: bucket}
	date := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	if _, err := st.Update(ctx, "shop", "test", func(e *globalstate.Env) error {
		e.Servers = []globalstate.Server{{Name: "shop-test-1", Host: "10.0.0.1", Observation: globalstate.ObservationKey("shop", "test", "AROA1:i-1")},
			{Name: "shop-test-2", Host: "10.0.0.2"}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutObservation(ctx, globalstate.ObservationKey("shop", "test", "AROA1:i-1"), &globalstate.Observed{CurrentVersion: "0123456789ab", Date: date}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutObservation(ctx, globalstate.ObservationKey("shop", "test", "shop-test-2"), &globalstate.Observed{Deploying: "ba9876543210", Date: date}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "jecloud.toml"), []byte("app = \"shop\"\n\n[env.test]\ntarget = \"ec2\"\nregion = \"us-east-1\"\nssh_from = [\"192.0.2.0/24\"]\n"), 0o644)
	code, out, errb := jepush(ctx, "servers", "test", "--dir", dir, "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errb)
	}
	var doc globalstate.Env
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(doc.Servers) != 2 {
		t.Fatalf("servers: %s", out)
	}
	for i, want := range []globalstate.Observed{{CurrentVersion: "0123456789ab", Date: date}, {Deploying: "ba9876543210", Date: date}} {
		got := doc.Servers[i].Observed
		if got == nil || got.CurrentVersion != want.CurrentVersion || got.Deploying != want.Deploying || !got.Date.Equal(want.Date) {
			t.Errorf("%s: observed %+v, want %+v from its observation object\n%s", doc.Servers[i].Name, got, want, out)
		}
	}
	if !t.Failed() {
		t.Logf("summary: servers --json shows 2 of 2 servers' observation objects")
	}
}
