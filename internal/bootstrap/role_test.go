package bootstrap_test

import (
	"testing"

	"github.com/jecloud/jecloud/internal/bootstrap"
	"github.com/jecloud/jecloud/internal/ec2test"
	"github.com/jecloud/jecloud/internal/globalstate"
)

// TestServerRoleCannotRewriteState: the attack is a server taken over (a
// hole in the app): with its instance role's credentials it rewrites the
// environment's document, requesting a version of its own, adding a
// server, or replacing another server's host keys (which jepush would
// then trust), or it forges another server's report. The role's policy
// lets a server read what it needs and write its own observation only
// (the object named by its aws:userid, role-id:instance-id); the
// document, the other observations, the bundles and other environments
// are out of its reach. (Before issue #17 the policy let every server
// write the whole document.)
func TestServerRoleCannotRewriteState(t *testing.T) {
	const bucket, roleID = "jecloud-state-eu-west-1-3f9c2a71d0e4", "AROAEXAMPLEROLEID"
	policy := bootstrap.RolePolicy(bucket, "shop", "prod")
	me := map[string]string{"aws:userid": roleID + ":i-0aaaaaaaaaaaaaaa1"}
	obj := func(key string) string { return "arn:aws:s3:::" + bucket + "/" + key }
	own := globalstate.ObservationKey("shop", "prod", roleID+":i-0aaaaaaaaaaaaaaa1")
	other := globalstate.ObservationKey("shop", "prod", roleID+":i-0bbbbbbbbbbbbbbb2")
	for _, tc := range []struct {
		what, action, key string
		allowed           bool
	}{
		{"read the document", "s3:GetObject", "envs/shop/prod.json", true},
		{"read a bundle", "s3:GetObject", "bundles/shop/0123456789ab.tar.zst", true},
		{"read another server's observation (rollout slots)", "s3:GetObject", other, true},
		{"write its own observation", "s3:PutObject", own, true},
		{"rewrite the document (requested version, servers, host keys)", "s3:PutObject", "envs/shop/prod.json", false},
		{"forge another server's observation", "s3:PutObject", other, false},
		{"write an observation by name", "s3:PutObject", globalstate.ObservationKey("shop", "prod", "shop-prod-2"), false},
		{"replace a bundle", "s3:PutObject", "bundles/shop/0123456789ab.tar.zst", false},
		{"delete the document", "s3:DeleteObject", "envs/shop/prod.json", false},
		{"read another environment", "s3:GetObject", "envs/shop/staging.json", false},
		{"write another environment's observation", "s3:PutObject", globalstate.ObservationKey("shop", "staging", roleID+":i-0aaaaaaaaaaaaaaa1"), false},
	} {
		if got := ec2test.PolicyAllows(policy, me, tc.action, obj(tc.key)); got != tc.allowed {
			t.Errorf("a server may %s (%s %s): %v, want %v", tc.what, tc.action, tc.key, got, tc.allowed)
		}
	}
	if t.Failed() {
		t.Logf("policy: %s", policy)
	}
	t.Logf("summary: the servers' role: 4 reads and writes it needs allowed, 7 attacks on the state denied")
}
