package bootstrap

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/jecloud/jecloud/internal/globalstate"
	"github.com/jecloud/jecloud/internal/placement"
)

// Scale makes the environment have n servers of role o.Role (web when
// empty): it makes the missing ones (Ensure), or terminates the newest
// ones of that role and forgets them; servers of other roles are left
// alone. The count is kept in the state document (desired_servers for web,
// desired_roles for the others). An environment keeps at least one web
// server; other roles may go down to 0.
func Scale(ctx context.Context, api EC2, st *globalstate.Store, o Options, n int) ([]globalstate.Server, error) {
	o.defaults()
	role := o.Role
	if role == "" {
		role = placement.Web
	}
	if err := placement.CheckRole(role); err != nil {
		return nil, err
	}
	if n < 1 && role == placement.Web {
		return nil, fmt.Errorf("scale to %d: an environment keeps at least 1 web server (`jepush destroy` removes them all)", n)
	}
	e, err := st.Update(ctx, o.App, o.Env, func(e *globalstate.Env) error {
		if role == placement.Web {
			e.DesiredServers = n
			return nil
		}
		if e.DesiredRoles == nil {
			e.DesiredRoles = map[string]int{}
		}
		e.DesiredRoles[role] = n
		return nil
	})
	if err != nil {
		return nil, err
	}
	var mine []globalstate.Server
	for _, s := range e.Servers {
		if s.RoleOrWeb() == role {
			mine = append(mine, s)
		}
	}
	if len(mine) <= n {
		return Ensure(ctx, api, st, o)
	}
	for _, s := range slices.Clone(mine[n:]) {
		if err := terminate(ctx, api, o, s); err != nil {
			return nil, err
		}
		if _, err := st.Update(ctx, o.App, o.Env, func(e *globalstate.Env) error {
			e.Servers = slices.DeleteFunc(e.Servers, func(x globalstate.Server) bool { return x.Name == s.Name })
			return nil
		}); err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Log, "%s: removed\n", s.Name)
	}
	e, _, err = st.Get(ctx, o.App, o.Env)
	if err != nil {
		return nil, err
	}
	return e.Servers, nil
}

// terminate ends a server's instance, after checking that JeCloud made it
// for this environment (its tags), and forgets its host keys.
func terminate(ctx context.Context, api EC2, o Options, s globalstate.Server) error {
	if s.InstanceID != "" {
		in, err := describe(ctx, api, s.InstanceID)
		if err != nil {
			return err
		}
		if in != nil {
			if r := tag(in.Tags, TagRole); tag(in.Tags, TagApp) != o.App || tag(in.Tags, TagEnv) != o.Env || r != "" && r != s.RoleOrWeb() {
				return fmt.Errorf("%s: instance %s is not tagged %s=%s, %s=%s, %s=%s: JeCloud did not make it as this server, so it leaves it alone",
					s.Name, s.InstanceID, TagApp, o.App, TagEnv, o.Env, TagRole, s.RoleOrWeb())
			}
			if _, err := api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{s.InstanceID}}); err != nil {
				return fmt.Errorf("terminating %s (%s): %w", s.Name, s.InstanceID, err)
			}
			fmt.Fprintf(o.Log, "%s: terminating %s\n", s.Name, s.InstanceID)
		}
	} else if s.Bootstrap == nil {
		fmt.Fprintf(o.Log, "%s: added by hand (no instance): forgotten, not terminated\n", s.Name)
	}
	if s.Host != "" {
		return RecordHostKeys(o.SSH.KnownHostsFile(), s.Host, nil, "")
	}
	return nil
}

func describe(ctx context.Context, api EC2, id string) (*types.Instance, error) {
	out, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if isCode(err, "InvalidInstanceID.NotFound") {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describing %s: %w", id, err)
	}
	for _, r := range out.Reservations {
		for i := range r.Instances {
			return &r.Instances[i], nil
		}
	}
	return nil, nil
}

func tag(tags []types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// Tagged returns the instances JeCloud made for the environment that are
// not terminated: what `jepush destroy` would end.
func Tagged(ctx context.Context, api EC2, app, env string) ([]types.Instance, error) {
	return tagged(ctx, api, app, env, "pending", "running", "stopping", "stopped")
}

func tagged(ctx context.Context, api EC2, app, env string, states ...string) ([]types.Instance, error) {
	out, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:" + TagApp), Values: []string{app}},
		{Name: aws.String("tag:" + TagEnv), Values: []string{env}},
		{Name: aws.String("instance-state-name"), Values: states},
	}})
	if err != nil {
		return nil, fmt.Errorf("listing the instances of %s/%s: %w", app, env, err)
	}
	var list []types.Instance
	for _, r := range out.Reservations {
		list = append(list, r.Instances...)
	}
	return list, nil
}

// Destroy terminates every instance tagged for the environment (and only
// those), waits until they are gone, deletes its security group and empties
// its server list. The document and its history stay.
func Destroy(ctx context.Context, api EC2, st *globalstate.Store, o Options) error {
	o.defaults()
	if err := terminateTagged(ctx, api, o); err != nil {
		return err
	}
	if err := deleteGroups(ctx, api, o); err != nil {
		return err
	}
	if err := removeRole(ctx, o); err != nil {
		return err
	}
	hosts, err := forgetServers(ctx, st, o)
	if err != nil {
		return err
	}
	return forgetHostKeys(o, hosts)
}

// terminateTagged terminates the instances tagged for the environment and
// waits, up to o.Timeout, until none is left but terminated ones.
func terminateTagged(ctx context.Context, api EC2, o Options) error {
	list, err := Tagged(ctx, api, o.App, o.Env)
	if err != nil {
		return err
	}
	var ids []string
	for _, in := range list {
		ids = append(ids, aws.ToString(in.InstanceId))
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids}); err != nil {
		return fmt.Errorf("terminating %s: %w", strings.Join(ids, ", "), err)
	}
	fmt.Fprintf(o.Log, "terminating %s\n", strings.Join(ids, ", "))
	return waitTerminated(ctx, api, o)
}

// waitTerminated polls until the environment has no instance that is not
// terminated (shutting-down ones included: the security group is theirs
// until then), for at most o.Timeout.
func waitTerminated(ctx context.Context, api EC2, o Options) error {
	deadline := time.Now().Add(o.Timeout)
	for {
		left, err := tagged(ctx, api, o.App, o.Env, "pending", "running", "stopping", "stopped", "shutting-down")
		if err != nil {
			return err
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d instance(s) still not terminated after %s", len(left), o.Timeout)
		}
		if err := sleep(ctx, o.Poll); err != nil {
			return err
		}
	}
}

// deleteGroups deletes the web servers' security group and those of other
// roles (jecloud-APP_ENV.ROLE, and the names before issue #17,
// jecloud-APP-ENV.ROLE), if tagged for the environment.
func deleteGroups(ctx context.Context, api EC2, o Options) error {
	web, old := GroupName(o.App, o.Env, placement.Web), legacyGroupName(o.App, o.Env, placement.Web)
	return deleteTaggedGroups(ctx, api, o, web, web+".*", old, old+".*")
}

// deleteTaggedGroups deletes the security groups whose names match names
// (wildcards as EC2's group-name filter takes them) and that are tagged
// for the environment; a group of those names without the tags is left
// alone, and said so.
func deleteTaggedGroups(ctx context.Context, api EC2, o Options, names ...string) error {
	gs, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{{Name: aws.String("group-name"), Values: names}}})
	if err != nil {
		return fmt.Errorf("security groups of %s/%s: %w", o.App, o.Env, err)
	}
	for _, g := range gs.SecurityGroups {
		name := aws.ToString(g.GroupName)
		if tag(g.Tags, TagApp) != o.App || tag(g.Tags, TagEnv) != o.Env {
			fmt.Fprintf(o.Log, "security group %s (%s) is not tagged for %s/%s: left alone\n", name, aws.ToString(g.GroupId), o.App, o.Env)
			continue
		}
		if err := deleteGroup(ctx, api, o, g); err != nil {
			return err
		}
		fmt.Fprintf(o.Log, "deleted security group %s (%s)\n", name, aws.ToString(g.GroupId))
	}
	return nil
}

// deleteGroup deletes a security group. EC2 may hold the group a little
// after its instances are gone (their network interfaces): a
// DependencyViolation is retried for up to 5 minutes.
func deleteGroup(ctx context.Context, api EC2, o Options, g types.SecurityGroup) error {
	err := retryWhile(ctx, o, "DependencyViolation", func() error {
		_, err := api.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: g.GroupId})
		return err
	})
	if err != nil {
		return fmt.Errorf("deleting security group %s: %w", aws.ToString(g.GroupName), err)
	}
	return nil
}

// retryWhile calls f until it does not fail with the AWS error code, for
// up to 5 minutes (what AWS takes to let a resource go after the one that
// used it), every o.Poll.
func retryWhile(ctx context.Context, o Options, code string, f func() error) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		err := f()
		if err == nil || !isCode(err, code) || time.Now().After(deadline) {
			return err
		}
		if err := sleep(ctx, o.Poll); err != nil {
			return err
		}
	}
}

// forgetServers empties the environment's server list and desired counts
// in its state document, and returns the hosts the servers had.
func forgetServers(ctx context.Context, st *globalstate.Store, o Options) ([]string, error) {
	var hosts []string
	if _, err := st.Update(ctx, o.App, o.Env, func(e *globalstate.Env) error {
		hosts = hosts[:0]
		for _, s := range e.Servers {
			if s.Host != "" {
				hosts = append(hosts, s.Host)
			}
		}
		e.Servers, e.DesiredServers, e.DesiredRoles = nil, 0, nil
		return nil
	}); err != nil {
		return nil, err
	}
	return hosts, nil
}

// forgetHostKeys removes the hosts' lines from the user's known_hosts (an
// address EC2 hands out again will be another machine's).
func forgetHostKeys(o Options, hosts []string) error {
	for _, h := range hosts {
		if err := RecordHostKeys(o.SSH.KnownHostsFile(), h, nil, ""); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}
