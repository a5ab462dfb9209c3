package bootstrap

import (
	"context"
	"fmt"
	"time"

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
	var sick []Sick
	for _, s := range e.Servers {
		if s.InstanceID == "" || !s.Ready() {
			continue
		}
		reason, err := checkOne(ctx, api, s, stale, now)
		if err != nil {
			return nil, nil, err
		}
		if reason != "" {
			sick = append(sick, Sick{Server: s.Name, InstanceID: s.InstanceID, Reason: reason})
		}
	}
	return sick, e, nil
}

func checkOne(ctx context.Context, api StatusAPI, s globalstate.Server, stale time.Duration, now time.Time) (string, error) {
	in, err := describe(ctx, api, s.InstanceID)
	if err != nil {
		return "", err
	}
	if in == nil {
		return "instance " + s.InstanceID + " not found", nil
	}
	switch n := in.State.Name; n {
	case types.InstanceStateNameTerminated, types.InstanceStateNameShuttingDown, types.InstanceStateNameStopped, types.InstanceStateNameStopping:
		return "instance " + s.InstanceID + " is " + string(n), nil
	case types.InstanceStateNameRunning:
		out, err := api.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{s.InstanceID}})
		if err != nil {
			return "", fmt.Errorf("status checks of %s (%s): %w", s.Name, s.InstanceID, err)
		}
		for _, st := range out.InstanceStatuses {
			if st.SystemStatus != nil && st.SystemStatus.Status == types.SummaryStatusImpaired {
				return "instance " + s.InstanceID + " fails its system status check", nil
			}
			if st.InstanceStatus != nil && st.InstanceStatus.Status == types.SummaryStatusImpaired {
				return "instance " + s.InstanceID + " fails its instance status check", nil
			}
		}
	}
	if stale > 0 {
		if s.Observed == nil || s.Observed.Date.IsZero() {
			return "no report in the global state", nil
		}
		if age := now.Sub(s.Observed.Date); age > stale {
			return fmt.Sprintf("last report %s old (more than %s)", age.Truncate(time.Second), stale), nil
		}
	}
	return "", nil
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
