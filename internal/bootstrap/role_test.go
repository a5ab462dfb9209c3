package bootstrap_test

import (
	"strings"
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
	policy := bootstrap.RolePolicy(bucket, "shop", "prod", nil)
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

// TestServerRoleBackupsScoped: the attack is a server taken over that
// reads, overwrites or deletes other environments' backups (another app's
// database dumps), or lists the bucket to find them. Before, the role had
// no backup rights and docs/ec2.md told the user to add the bucket's to
// it: every server could do all of that. With backup_bucket set, the role
// gives exactly PREFIX/APP/ENV/... of that bucket: what internal/backup
// writes, lists, reads and prunes for this environment.
func TestServerRoleBackupsScoped(t *testing.T) {
	const state, bb = "jecloud-state-eu-west-1-3f9c2a71d0e4", "acme-backups"
	policy := bootstrap.RolePolicy(state, "shop", "prod", &bootstrap.Backups{Bucket: bb, Prefix: "/team/jc/"})
	obj := func(key string) string { return "arn:aws:s3:::" + bb + "/" + key }
	me := map[string]string{"aws:userid": "AROAEXAMPLEROLEID:i-0aaaaaaaaaaaaaaa1"}
	list := func(prefix string) map[string]string {
		v := map[string]string{"aws:userid": me["aws:userid"]}
		if prefix != "-" {
			v["s3:prefix"] = prefix
		}
		return v
	}
	own := "team/jc/shop/prod/redis/20261204T030000Z.rdb.zst"
	for _, tc := range []struct {
		what, action, resource string
		vars                   map[string]string
		allowed                bool
	}{
		{"upload its backup", "s3:PutObject", obj(own), me, true},
		{"upload its manifest", "s3:PutObject", obj(own + ".json"), me, true},
		{"read its backup (restore)", "s3:GetObject", obj(own), me, true},
		{"prune its old backups (retention)", "s3:DeleteObject", obj(own), me, true},
		{"list its backups", "s3:ListBucket", "arn:aws:s3:::" + bb, list("team/jc/shop/prod/redis/"), true},
		{"read shop/prod-eu's backup", "s3:GetObject", obj("team/jc/shop/prod-eu/redis/x.rdb.zst"), me, false},
		{"read shop-prod/eu's backup", "s3:GetObject", obj("team/jc/shop-prod/eu/redis/x.rdb.zst"), me, false},
		{"delete another app's backup", "s3:DeleteObject", obj("team/jc/blog/prod/mongodb/x.zst"), me, false},
		{"overwrite another app's manifest", "s3:PutObject", obj("team/jc/blog/prod/mongodb/x.zst.json"), me, false},
		{"write outside the prefix", "s3:PutObject", obj("shop/prod/x"), me, false},
		{"list the whole bucket", "s3:ListBucket", "arn:aws:s3:::" + bb, list("-"), false},
		{"list the prefix of all apps", "s3:ListBucket", "arn:aws:s3:::" + bb, list("team/jc/"), false},
		{"list shop/prod-eu's backups", "s3:ListBucket", "arn:aws:s3:::" + bb, list("team/jc/shop/prod-eu/"), false},
		{"change the bucket's policy", "s3:PutBucketPolicy", "arn:aws:s3:::" + bb, me, false},
	} {
		if got := ec2test.PolicyAllows(policy, tc.vars, tc.action, tc.resource); got != tc.allowed {
			t.Errorf("a server of shop/prod may %s (%s %s): %v, want %v", tc.what, tc.action, tc.resource, got, tc.allowed)
		}
	}
	if t.Failed() {
		t.Logf("policy: %s", policy)
	}
	if p := bootstrap.RolePolicy(state, "shop", "prod", nil); strings.Contains(p, bb) || strings.Contains(p, "ListBucket") {
		t.Errorf("without backup_bucket the role has backup rights: %s", p)
	}
	for _, b := range []bootstrap.Backups{{Bucket: bb, Prefix: "*"}, {Bucket: bb, Prefix: "jc/${aws:userid}"}, {Bucket: bb, Prefix: "a/../b"}, {Bucket: "Acme_Backups"}, {Bucket: "a*"}} {
		if err := bootstrap.CheckBackups(b); err == nil {
			t.Errorf("CheckBackups(%+v) accepted it", b)
		}
	}
	if err := bootstrap.CheckBackups(bootstrap.Backups{Bucket: bb, Prefix: "team/jc"}); err != nil {
		t.Error(err)
	}
	t.Logf("summary: backups in the role: 5 rights it needs allowed, 9 attacks on other environments' backups denied; 5 policy-widening bucket or prefix values refused")
}
