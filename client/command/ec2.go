package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/urfave/cli/v2"

	"github.com/jecloud/jecloud/internal/bootstrap"
	"github.com/jecloud/jecloud/internal/config"
	"github.com/jecloud/jecloud/internal/globalstate"
	"github.com/jecloud/jecloud/internal/placement"
	"github.com/jecloud/jecloud/internal/push"
	"github.com/jecloud/jecloud/internal/remote"
)

// ec2Env is an environment with target = "ec2", ready to work on.
type ec2Env struct {
	region string
	api    *ec2.Client
	elb    *elasticloadbalancingv2.Client // the load balancer (balancer.go)
	acm    *acm.Client                    // its certificate
	s3     *s3.Client
	st     *globalstate.Store
	opts   bootstrap.Options
	root   string // the agent's root, if the config says
	// elasticIP: the environment's server has an Elastic IP (elastic_ip);
	// s3Deploy: deploy = "s3".
	elasticIP, s3Deploy bool
}

// openEC2 loads dir's config and the AWS facts for environment env, which
// must have target = "ec2". needKeys: the SSH key and jeagent are needed
// (making servers).
func openEC2(c *cli.Context, dir, env string, needKeys bool) (*ec2Env, error) {
	cfg, err := config.Load(dir)
	if err != nil {
		return nil, usageError{err}
	}
	e, err := cfg.Env(env, config.Overrides{})
	if err != nil {
		return nil, usageError{err}
	}
	if e.EC2 == nil {
		return nil, usageError{fmt.Errorf("environment %s of %s is not on EC2: set target = \"ec2\" in [env.%s] of %s (docs/ec2.md)", env, cfg.App, env, config.FileName)}
	}
	return openEC2Env(c, cfg, e, needKeys)
}

func openEC2Env(c *cli.Context, cfg *config.Config, e *config.Env, needKeys bool) (*ec2Env, error) {
	ctx := c.Context
	ac, err := awsConfig(ctx, e.EC2.Region)
	if err != nil {
		return nil, err
	}
	st, s3c, err := openState(ctx, ac, c.App.ErrWriter)
	if err != nil {
		return nil, err
	}
	x := &ec2Env{region: ac.Region, api: ec2.NewFromConfig(ac), elb: elasticloadbalancingv2.NewFromConfig(ac), acm: acm.NewFromConfig(ac), s3: s3c, st: st, root: e.Root,
		elasticIP: e.EC2.ElasticIP, s3Deploy: e.EC2.Deploy == "s3", opts: bootstrap.Options{
			App: cfg.App, Env: e.Name, Count: e.EC2.Servers,
			InstanceType: e.EC2.InstanceType, ImageID: e.EC2.Image, Arch: e.EC2.Arch,
			SSHFrom: e.EC2.SSHFrom, Ports: e.EC2.Ports,
			SSH: sshOptions(), Log: c.App.ErrWriter,
			IAM: iam.NewFromConfig(ac), StateBucket: st.Bucket,
		}}
	if e.EC2.BackupBucket != "" || e.EC2.BackupPrefix != "" {
		b := bootstrap.Backups{Bucket: e.EC2.BackupBucket, Prefix: e.EC2.BackupPrefix}
		if err := bootstrap.CheckBackups(b); err != nil {
			return nil, usageError{fmt.Errorf("[env.%s] of %s: %w", e.Name, config.FileName, err)}
		}
		x.opts.Backups = &b
	}
	if needKeys {
		if x.opts.AuthorizedKey, err = publicKey(cfg.Dir, e.EC2.SSHKey); err != nil {
			return nil, usageError{err}
		}
		if x.opts.Agent, err = agentBinary(cfg.Dir, e.EC2.AgentBinary, e.EC2.Arch); err != nil {
			return nil, usageError{err}
		}
		x.opts.Tick = tickBinary(x.opts.Agent)
	}
	return x, nil
}

// targets turns ready servers into push targets.
func (x *ec2Env) targets(servers []globalstate.Server) ([]remote.Target, error) {
	var ts []remote.Target
	for _, s := range servers {
		if !s.Ready() || s.Host == "" {
			continue
		}
		dest := s.Host
		if s.User != "" {
			dest = s.User + "@" + s.Host
		}
		ts = append(ts, remote.Target{Dest: dest, Root: x.root, Role: s.Role})
	}
	// Servers of other roles first: process types moving off the web
	// servers start there before they stop on the web servers.
	slices.SortStableFunc(ts, func(a, b remote.Target) int { return webLast(a) - webLast(b) })
	if len(ts) == 0 {
		return nil, fmt.Errorf("%s/%s has no server ready (the first `jepush DIR %s` makes them): see %s", x.opts.App, x.opts.Env, x.opts.Env, x.st.URL(x.opts.App, x.opts.Env))
	}
	return ts, nil
}

func webLast(t remote.Target) int {
	if t.Role == "" || t.Role == placement.Web {
		return 1
	}
	return 0
}

// ec2Targets returns the servers of an EC2 environment, making the missing
// ones (docs/ec2.md).
// ec2Targets also returns how to record a push's version in the global
// state, or, with deploy = "s3", how to push through it.
// Without makeServers, the servers are only read from the global state.
// The global state's store comes last.
func ec2Targets(c *cli.Context, cfg *config.Config, e *config.Env, makeServers bool) ([]remote.Target, func(context.Context, string) error, *push.Global, *globalstate.Store, push.Rotation, error) {
	x, err := openEC2Env(c, cfg, e, makeServers)
	if err != nil {
		return nil, nil, nil, nil, nil, err
	}
	var servers []globalstate.Server
	if makeServers {
		healHint(c, x)
		servers, err = bootstrap.Ensure(c.Context, x.api, x.st, x.opts)
		if err == nil && x.elasticIP {
			// The Elastic IP (docs/ec2.md#healing); the server's host is then it.
			if _, err = bootstrap.EnsureAddress(c.Context, x.api, x.st, x.opts); err == nil {
				var doc *globalstate.Env
				if doc, _, err = x.st.Get(c.Context, x.opts.App, x.opts.Env); err == nil {
					servers = doc.Servers
				}
			}
		}
	} else {
		var doc *globalstate.Env
		if doc, _, err = x.st.Get(c.Context, x.opts.App, x.opts.Env); err == nil {
			servers = doc.Servers
		}
	}
	if err != nil {
		return nil, nil, nil, nil, nil, err
	}
	ts, err := x.targets(servers)
	if err != nil {
		return nil, nil, nil, nil, nil, err
	}
	for i := range ts {
		ts[i].Agent = e.Agent
	}
	by := pusher()
	if e.EC2.Deploy == "s3" {
		var ready []globalstate.Server
		for _, s := range servers {
			if s.Ready() && s.Host != "" {
				ready = append(ready, s)
			}
		}
		// In the order of the targets.
		slices.SortStableFunc(ready, func(a, b globalstate.Server) int {
			return webLast(remote.Target{Role: a.Role}) - webLast(remote.Target{Role: b.Role})
		})
		return ts, nil, &push.Global{Store: x.st, Bundles: x.s3, Servers: ready, MaxParallel: e.EC2.MaxParallel, By: by,
			Region: x.region, ServerEndpoint: e.EC2.ServerS3Endpoint}, x.st, nil, nil
	}
	requested := func(ctx context.Context, id string) error {
		_, err := x.st.Update(ctx, x.opts.App, x.opts.Env, func(e *globalstate.Env) error {
			e.Request(id, by, time.Now().UTC().Truncate(time.Second))
			return nil
		})
		return err
	}
	rot, err := ec2Balancer(c.Context, x, servers, makeServers)
	if err != nil {
		return nil, nil, nil, nil, nil, err
	}
	return ts, requested, nil, x.st, rot, nil
}

// ec2lb is the EC2 client as the load balancer needs it.
func (x *ec2Env) ec2lb() bootstrap.BalancerEC2 { return x.api }

// awsConfig loads the AWS configuration the standard way (AWS_PROFILE,
// ~/.aws, the environment, instance roles; AWS_ENDPOINT_URL_EC2 and _S3).
func awsConfig(ctx context.Context, region string) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return ac, fmt.Errorf("aws configuration: %w", err)
	}
	if ac.Region == "" {
		return ac, usageError{errors.New(`no AWS region: set region = "..." for this environment in jecloud.toml, or AWS_REGION, or region in ~/.aws/config`)}
	}
	return ac, nil
}

// openState finds (or makes) the account's state bucket for the region.
func openState(ctx context.Context, ac aws.Config, log io.Writer) (*globalstate.Store, *s3.Client, error) {
	id, err := sts.NewFromConfig(ac).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return nil, nil, fmt.Errorf("who am I on AWS (sts get-caller-identity): %w", err)
	}
	s3c := s3.NewFromConfig(ac, func(o *s3.Options) {
		// An S3-compatible server on a custom endpoint wants path-style URLs.
		if os.Getenv("AWS_ENDPOINT_URL_S3") != "" || os.Getenv("AWS_ENDPOINT_URL") != "" {
			o.UsePathStyle = true
		}
	})
	bucket, err := globalstate.EnsureBucket(ctx, s3c, ac.Region, log)
	if err != nil {
		return nil, nil, err
	}
	return &globalstate.Store{S3: s3c, Bucket: bucket, Owner: aws.ToString(id.Account)}, s3c, nil
}

// publicKey reads the user's SSH public key: file (relative to the app
// directory), else the first of ~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_rsa.pub.
func publicKey(dir, file string) (string, error) {
	var tries []string
	if file != "" {
		if !filepath.IsAbs(file) && !strings.HasPrefix(file, "~") {
			file = filepath.Join(dir, file)
		}
		tries = []string{expandHome(file)}
	} else {
		home, _ := os.UserHomeDir()
		for _, n := range []string{"id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"} {
			tries = append(tries, filepath.Join(home, ".ssh", n))
		}
	}
	for _, p := range tries {
		b, err := os.ReadFile(p)
		if err == nil {
			return strings.TrimSpace(string(b)), nil
		}
	}
	return "", fmt.Errorf("no SSH public key for the new servers: tried %s; make one with ssh-keygen -t ed25519, or set ssh_key = \"PATH.pub\" for this environment", strings.Join(tries, ", "))
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		home, _ := os.UserHomeDir()
		return filepath.Join(home, rest)
	}
	return p
}

// tickBinary is the jeagent-tick beside the jeagent at agent, named as
// `make build` and `make cross` name it (jeagent-tick, or
// jeagent-tick-linux-ARCH beside jeagent-linux-ARCH), or "" if there is
// none: new servers then get jeagent alone, and their timer runs it.
func tickBinary(agent string) string {
	base := filepath.Base(agent)
	rest, ok := strings.CutPrefix(base, "jeagent")
	if !ok {
		return ""
	}
	p := filepath.Join(filepath.Dir(agent), "jeagent-tick"+rest)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return p
	}
	return ""
}

// agentBinary finds the jeagent to install on new servers: the config's
// agent_binary, $JEPUSH_AGENT_BINARY, jeagent-linux-ARCH beside jepush, or
// the jeagent beside jepush when jepush itself runs on linux/ARCH.
func agentBinary(dir, file, arch string) (string, error) {
	if arch == "" {
		arch = "amd64"
	}
	if file == "" {
		file = os.Getenv("JEPUSH_AGENT_BINARY")
	}
	if file != "" {
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, expandHome(file))
		}
		if _, err := os.Stat(file); err != nil {
			return "", fmt.Errorf("agent_binary: %w", err)
		}
		return file, nil
	}
	var tries []string
	if self, err := os.Executable(); err == nil {
		tries = append(tries, filepath.Join(filepath.Dir(self), "jeagent-linux-"+arch))
		if runtime.GOOS == "linux" && runtime.GOARCH == arch {
			tries = append(tries, filepath.Join(filepath.Dir(self), "jeagent"))
		}
	}
	for _, p := range tries {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no jeagent for linux/%s to install on new servers (tried %s): `make cross` builds it; set agent_binary = \"PATH\" for this environment or JEPUSH_AGENT_BINARY", arch, strings.Join(tries, ", "))
}
