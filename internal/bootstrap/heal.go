package bootstrap

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/jecloud/jecloud/internal/globalstate"
)

// StatusAPI is what Check needs beyond EC2: the instances' status checks.
type StatusAPI interface {
	EC2
	DescribeInstanceStatus(context.Context, *ec2.DescribeInstanceStatusInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error)
}

// Sick is a server that needs replacing, and why.
type Sick struct {
	Server     string `json:"server"`
	InstanceID string `json:"instance_id"`
	Reason     string `json:"reason"`
}

// Check returns the environment's servers that need replacing: a ready
// server made by jepush whose instance is gone (not found, terminated,
// shutting down, stopped or stopping), or failing its status checks
// (DescribeInstanceStatus: system or instance status "impaired"), or, when
// stale > 0, whose report in the global state is older than stale (or
// missing). A server added by hand, or still being made, is never sick:
// the next push resumes the making.
func Check(ctx context.Context, api StatusAPI, st *globalstate.Store, o Options, stale time.Duration, now time.Time) ([]Sick, *globalstate.Env, error) {
	e, _, err := st.Get(ctx, o.App, o.Env)
	if err != nil {
		return nil, nil, err
	}
	if stale > 0 {
		if err := st.Observe(ctx, e); err != nil {
			return nil, nil, err
		}
	}
	var ids []string
	for _, s := range e.Servers {
		if s.InstanceID != "" && s.Ready() {
			ids = append(ids, s.InstanceID)
		}
	}
	instances, impaired, err := describeHealth(ctx, api, ids)
	if err != nil {
		return nil, nil, err
	}
	var sick []Sick
	for _, s := range e.Servers {
		if s.InstanceID == "" || !s.Ready() {
			continue
		}
		if reason := sickness(s, instances[s.InstanceID], impaired[s.InstanceID], stale, now); reason != "" {
			sick = append(sick, Sick{Server: s.Name, InstanceID: s.InstanceID, Reason: reason})
		}
	}
	return sick, e, nil
}

// describeHealth describes the instances ids and the status checks of
// those running, in one call of each per batch of 100 (not two per
// server). Filters rather than InstanceIds: an id AWS no longer knows is
// left out of the answer instead of failing the whole call. It returns
// the instances found and, for each one failing a check, which.
func describeHealth(ctx context.Context, api StatusAPI, ids []string) (map[string]*types.Instance, map[string]string, error) {
	instances, impaired := map[string]*types.Instance{}, map[string]string{}
	for batch := range slices.Chunk(ids, 100) {
		filter := []types.Filter{{Name: aws.String("instance-id"), Values: batch}}
		pages := ec2.NewDescribeInstancesPaginator(api, &ec2.DescribeInstancesInput{Filters: filter})
		for pages.HasMorePages() {
			out, err := pages.NextPage(ctx)
			if err != nil {
				return nil, nil, fmt.Errorf("describing %s: %w", strings.Join(batch, ", "), err)
			}
			for _, r := range out.Reservations {
				for i := range r.Instances {
					instances[aws.ToString(r.Instances[i].InstanceId)] = &r.Instances[i]
				}
			}
		}
		var running []string
		for _, id := range batch {
			if in := instances[id]; in != nil && in.State != nil && in.State.Name == types.InstanceStateNameRunning {
				running = append(running, id)
			}
		}
		if len(running) == 0 {
			continue
		}
		statuses := ec2.NewDescribeInstanceStatusPaginator(api, &ec2.DescribeInstanceStatusInput{
			Filters: []types.Filter{{Name: aws.String("instance-id"), Values: running}}})
		for statuses.HasMorePages() {
			out, err := statuses.NextPage(ctx)
			if err != nil {
				return nil, nil, fmt.Errorf("status checks of %s: %w", strings.Join(running, ", "), err)
			}
			for _, st := range out.InstanceStatuses {
				id := aws.ToString(st.InstanceId)
				switch {
				case st.SystemStatus != nil && st.SystemStatus.Status == types.SummaryStatusImpaired:
					impaired[id] = "system"
				case st.InstanceStatus != nil && st.InstanceStatus.Status == types.SummaryStatusImpaired:
					impaired[id] = "instance"
				}
			}
		}
	}
	return instances, impaired, nil
}

// sickness is why s needs replacing ("" if it does not), from its
// instance (nil: not found), the status check it fails ("" for none) and
// its report's age.
func sickness(s globalstate.Server, in *types.Instance, impaired string, stale time.Duration, now time.Time) string {
	if in == nil {
		return "instance " + s.InstanceID + " not found"
	}
	if in.State != nil {
		switch n := in.State.Name; n {
		case types.InstanceStateNameTerminated, types.InstanceStateNameShuttingDown, types.InstanceStateNameStopped, types.InstanceStateNameStopping:
			return "instance " + s.InstanceID + " is " + string(n)
		}
	}
	if impaired != "" {
		return "instance " + s.InstanceID + " fails its " + impaired + " status check"
	}
	if stale > 0 {
		if s.Observed == nil || s.Observed.Date.IsZero() {
			return "no report in the global state"
		}
		if age := now.Sub(s.Observed.Date); age > stale {
			return fmt.Sprintf("last report %s old (more than %s)", age.Truncate(time.Second), stale)
		}
	}
	return ""
}

// Heal replaces each sick server: its instance is terminated if it is
// still there (only when JeCloud tagged it for this server), and the
// server's entry in the global state starts over (same name and role, a
// new client token), which Ensure then makes as it makes any server: the
// same user-data, security group and IAM role. The replacement follows
// the environment's document like the server it replaces (deploy = "s3":
// it fetches the requested release by itself). The Elastic IP, if the
// environment has one, moves to it (o.ElasticIP).
func Heal(ctx context.Context, api EC2, st *globalstate.Store, o Options, sick []Sick) ([]globalstate.Server, error) {
	o.defaults()
	e, _, err := st.Get(ctx, o.App, o.Env)
	if err != nil {
		return nil, err
	}
	for _, k := range sick {
		s := e.Server(k.Server)
		if s == nil || s.InstanceID != k.InstanceID {
			continue // replaced meanwhile
		}
		if err := terminate(ctx, api, o, *s); err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Log, "%s: replacing %s (%s)\n", s.Name, k.InstanceID, k.Reason)
		if _, err := st.Update(ctx, o.App, o.Env, func(e *globalstate.Env) error {
			r := e.Server(k.Server)
			if r == nil || r.InstanceID != k.InstanceID {
				return nil
			}
			*r = globalstate.Server{Name: r.Name, Role: r.Role, User: r.User, Extra: r.Extra,
				Bootstrap: &globalstate.Bootstrap{Step: "launching", ClientToken: token(), Started: time.Now().UTC().Truncate(time.Second)}}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return Ensure(ctx, api, st, o)
}
