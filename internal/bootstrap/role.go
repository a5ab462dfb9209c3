package bootstrap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/jecloud/jecloud/internal/globalstate"
)

// IAM is what the servers' role needs of an IAM client (*iam.Client has it).
type IAM interface {
	GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	CreateRole(context.Context, *iam.CreateRoleInput, ...func(*iam.Options)) (*iam.CreateRoleOutput, error)
	PutRolePolicy(context.Context, *iam.PutRolePolicyInput, ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
	DeleteRolePolicy(context.Context, *iam.DeleteRolePolicyInput, ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error)
	DeleteRole(context.Context, *iam.DeleteRoleInput, ...func(*iam.Options)) (*iam.DeleteRoleOutput, error)
	GetInstanceProfile(context.Context, *iam.GetInstanceProfileInput, ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
	CreateInstanceProfile(context.Context, *iam.CreateInstanceProfileInput, ...func(*iam.Options)) (*iam.CreateInstanceProfileOutput, error)
	AddRoleToInstanceProfile(context.Context, *iam.AddRoleToInstanceProfileInput, ...func(*iam.Options)) (*iam.AddRoleToInstanceProfileOutput, error)
	RemoveRoleFromInstanceProfile(context.Context, *iam.RemoveRoleFromInstanceProfileInput, ...func(*iam.Options)) (*iam.RemoveRoleFromInstanceProfileOutput, error)
	DeleteInstanceProfile(context.Context, *iam.DeleteInstanceProfileInput, ...func(*iam.Options)) (*iam.DeleteInstanceProfileOutput, error)
}

// maxRoleName is IAM's limit on a role's name (an instance profile's is 128).
const maxRoleName = 64

// RoleName is the name of the environment's servers' role and instance
// profile: "jecloud-APP_ENV", or, when that is longer than IAM's 64
// characters, "jecloud-" and the first 28 hex digits of the SHA-256 of
// "APP/ENV". APP and ENV cannot contain '_' (IAM names may), so the first
// form names one app environment; the second has no '_', and neither form
// is a LegacyName (which has a '-' after "jecloud-" and no '_'): two
// environments never share a role (issue #17).
func RoleName(app, env string) string {
	n := "jecloud-" + app + "_" + env
	if len(n) <= maxRoleName {
		return n
	}
	sum := sha256.Sum256([]byte(app + "/" + env))
	return "jecloud-" + hex.EncodeToString(sum[:])[:28]
}

// LegacyName is how versions before issue #17 named the role, instance
// profile and web security group of APP/ENV: "jecloud-APP-ENV", which
// (a, b-c) and (a-b, c) shared. A resource of that name is the
// environment's only if it carries the environment's tags.
func LegacyName(app, env string) string { return "jecloud-" + app + "-" + env }

// roleTagged reports whether a role carries app/env's tags.
func roleTagged(r *iamtypes.Role, app, env string) bool {
	tags := map[string]string{}
	for _, t := range r.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return tags[TagApp] == app && tags[TagEnv] == env
}

// findRole returns the environment's role: RoleName's if there is one
// (refused if it is tagged for another environment or none: someone
// else's), else LegacyName's if it is tagged for this environment (a
// server made before issue #17 keeps its role and profile), else nil
// and RoleName, to be made.
func findRole(ctx context.Context, api IAM, app, env string) (string, *iamtypes.Role, error) {
	name := RoleName(app, env)
	got, err := api.GetRole(ctx, &iam.GetRoleInput{RoleName: &name})
	switch {
	case err == nil && roleTagged(got.Role, app, env):
		return name, got.Role, nil
	case err == nil:
		return "", nil, fmt.Errorf("IAM role %s, which the servers of %s/%s should have, already exists and is not tagged %s=%s, %s=%s: it is someone else's (rename or delete it)", name, app, env, TagApp, app, TagEnv, env)
	case !isNoSuchEntity(err):
		return "", nil, fmt.Errorf("role %s: %w", name, err)
	}
	old := LegacyName(app, env)
	got, err = api.GetRole(ctx, &iam.GetRoleInput{RoleName: &old})
	switch {
	case err == nil && roleTagged(got.Role, app, env):
		return old, got.Role, nil
	case err == nil || isNoSuchEntity(err):
		return name, nil, nil
	default:
		return "", nil, fmt.Errorf("role %s: %w", old, err)
	}
}

const rolePolicyName = "jecloud-state"

// RolePolicy is what the servers may do: read the app's bundles, their
// environment's document and its servers' observations, and write their
// own observation, the object named by their aws:userid (for an instance
// role, role-id:instance-id: globalstate.ObservationKey). Nothing else: a
// server cannot change the requested version, the server list, the host
// keys or another server's report.
//
// With backups (the bucket the servers' backups go to), they may also
// write, read, list and delete the objects under PREFIX/APP/ENV/ in it,
// where internal/backup keeps this environment's backups
// (PREFIX/APP/ENV/SERVICE/...), and nothing else of that bucket: not
// another environment's backups, nor a listing of the bucket.
func RolePolicy(bucket, app, env string, backups *Backups) string {
	arn := "arn:aws:s3:::" + bucket + "/"
	statements := []map[string]any{
		{"Sid": "Bundles", "Effect": "Allow", "Action": "s3:GetObject",
			"Resource": arn + "bundles/" + app + "/*"},
		{"Sid": "ReadState", "Effect": "Allow", "Action": "s3:GetObject",
			"Resource": []string{arn + globalstate.Key(app, env), arn + globalstate.ObservationKey(app, env, "*")}},
		{"Sid": "OwnObservation", "Effect": "Allow", "Action": "s3:PutObject",
			"Resource": arn + globalstate.ObservationKey(app, env, "${aws:userid}")},
	}
	if backups != nil && backups.Bucket != "" {
		own := backups.dir(app, env) // PREFIX/APP/ENV/
		statements = append(statements,
			map[string]any{"Sid": "OwnBackups", "Effect": "Allow", "Action": []string{"s3:PutObject", "s3:GetObject", "s3:DeleteObject"},
				"Resource": "arn:aws:s3:::" + backups.Bucket + "/" + own + "*"},
			map[string]any{"Sid": "ListOwnBackups", "Effect": "Allow", "Action": "s3:ListBucket",
				"Resource":  "arn:aws:s3:::" + backups.Bucket,
				"Condition": map[string]any{"StringLike": map[string]any{"s3:prefix": []string{own + "*"}}}})
	}
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": statements})
	return string(b)
}

// Backups is the bucket the environment's servers back up to (server.json's
// backups.bucket and backups.prefix, docs/services.md#backups), when their
// role should give them its rights.
type Backups struct {
	Bucket string
	Prefix string // "": internal/backup's default, "jecloud"
}

// dir is where internal/backup keeps app/env's backups: PREFIX/APP/ENV/.
// APP and ENV hold no '/', so no environment's is inside another's.
func (b Backups) dir(app, env string) string {
	p := strings.Trim(b.Prefix, "/")
	if p == "" {
		p = "jecloud"
	}
	return path.Join(p, app, env) + "/" // as internal/backup joins them
}

// CheckBackups refuses a bucket or prefix that is not one, or that would
// widen the policy: IAM's wildcards (* ?) and variables (${...}) in it
// would match other environments' backups.
func CheckBackups(b Backups) error {
	if n := len(b.Bucket); n < 3 || n > 63 || strings.Trim(b.Bucket, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
		return fmt.Errorf("backup_bucket = %q: give an S3 bucket name (3 to 63 of a-z, 0-9, '.' and '-')", b.Bucket)
	}
	if strings.Trim(b.Prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/") != "" || strings.Contains("/"+b.Prefix+"/", "/../") || strings.Contains("/"+b.Prefix+"/", "/./") {
		return fmt.Errorf("backup_prefix = %q: use letters, digits and ._-/ (no '..'): it becomes part of the servers' IAM policy", b.Prefix)
	}
	return nil
}

const trustPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// role makes (or finds) the environment's role and instance profile, with
// the policy of RolePolicy, and returns the profile's name.
func (b *booter) role(ctx context.Context) (string, error) {
	if b.o.IAM == nil || b.o.StateBucket == "" {
		return "", nil
	}
	if b.profile != "" {
		return b.profile, nil
	}
	api := b.o.IAM
	name, got, err := findRole(ctx, api, b.o.App, b.o.Env)
	if err != nil {
		return "", err
	}
	if got == nil {
		made, err := api.CreateRole(ctx, &iam.CreateRoleInput{RoleName: &name, AssumeRolePolicyDocument: aws.String(trustPolicy),
			Description: aws.String("JeCloud servers of " + b.o.App + "/" + b.o.Env),
			Tags:        []iamtypes.Tag{{Key: aws.String(TagApp), Value: aws.String(b.o.App)}, {Key: aws.String(TagEnv), Value: aws.String(b.o.Env)}}})
		if err != nil && !isCode(err, "EntityAlreadyExists") {
			return "", fmt.Errorf("creating role %s: %w", name, err)
		}
		if err != nil { // made meanwhile by another run
			got, err := api.GetRole(ctx, &iam.GetRoleInput{RoleName: &name})
			if err != nil {
				return "", fmt.Errorf("role %s: %w", name, err)
			}
			b.roleID = aws.ToString(got.Role.RoleId)
		} else {
			b.roleID = aws.ToString(made.Role.RoleId)
			fmt.Fprintf(b.o.Log, "created IAM role %s (its servers read their bundles and state, and write their own reports, nothing else)\n", name)
		}
	} else {
		b.roleID = aws.ToString(got.RoleId)
	}
	if _, err := api.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: &name, PolicyName: aws.String(rolePolicyName),
		PolicyDocument: aws.String(RolePolicy(b.o.StateBucket, b.o.App, b.o.Env, b.o.Backups))}); err != nil {
		return "", fmt.Errorf("policy of role %s: %w", name, err)
	}
	p, err := api.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: &name})
	if isNoSuchEntity(err) {
		if _, err := api.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: &name}); err != nil && !isCode(err, "EntityAlreadyExists") {
			return "", fmt.Errorf("creating instance profile %s: %w", name, err)
		}
		p, err = api.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: &name})
	}
	if err != nil {
		return "", fmt.Errorf("instance profile %s: %w", name, err)
	}
	if len(p.InstanceProfile.Roles) == 0 {
		if _, err := api.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: &name, RoleName: &name}); err != nil && !isCode(err, "LimitExceeded") {
			return "", fmt.Errorf("adding role %s to its instance profile: %w", name, err)
		}
	}
	b.profile = name
	return name, nil
}

func isNoSuchEntity(err error) bool { return isCode(err, "NoSuchEntity") }

// profileNotYet: IAM is eventually consistent; a new instance profile may be
// refused by EC2 for a few seconds.
func profileNotYet(err error) bool {
	return isCode(err, "InvalidParameterValue") && strings.Contains(err.Error(), "iamInstanceProfile")
}

// removeRole deletes the environment's role and instance profile, of
// the new name and of the old one, if they carry its tags.
func removeRole(ctx context.Context, o Options) error {
	if o.IAM == nil {
		return nil
	}
	for _, name := range []string{RoleName(o.App, o.Env), LegacyName(o.App, o.Env)} {
		if err := removeRoleNamed(ctx, o, name); err != nil {
			return err
		}
	}
	return nil
}

func removeRoleNamed(ctx context.Context, o Options, name string) error {
	r, err := o.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: &name})
	if isNoSuchEntity(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("role %s: %w", name, err)
	}
	if !roleTagged(r.Role, o.App, o.Env) {
		fmt.Fprintf(o.Log, "IAM role %s is not tagged for %s/%s: left alone\n", name, o.App, o.Env)
		return nil
	}
	steps := []func() error{
		func() error {
			_, err := o.IAM.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{InstanceProfileName: &name, RoleName: &name})
			return err
		},
		func() error {
			_, err := o.IAM.DeleteInstanceProfile(ctx, &iam.DeleteInstanceProfileInput{InstanceProfileName: &name})
			return err
		},
		func() error {
			_, err := o.IAM.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: &name, PolicyName: aws.String(rolePolicyName)})
			return err
		},
		func() error { _, err := o.IAM.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: &name}); return err },
	}
	for _, step := range steps {
		if err := step(); err != nil && !isNoSuchEntity(err) {
			return fmt.Errorf("deleting IAM role %s: %w", name, err)
		}
	}
	fmt.Fprintf(o.Log, "deleted IAM role and instance profile %s\n", name)
	return nil
}

var profileWait = 2 * time.Minute
