//go:build e2e

package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/crypto/ssh"

	"github.com/jecloud/jecloud/internal/backup/s3test"
	"github.com/jecloud/jecloud/internal/bootstrap"
	"github.com/jecloud/jecloud/internal/ec2test"
	"github.com/jecloud/jecloud/internal/globalstate"
	"github.com/jecloud/jecloud/internal/lab"
)

// labCloud launches each instance as a lab server that boots with
// cloud-init, seeded with the instance's user-data, like an EC2 instance.
// The image offers a Node.js mirror (as a custom image would: these
// servers have no internet).
type labCloud struct {
	t      *testing.T
	mirror nodeMirror
	mu     sync.Mutex
	booted []*lab.Server
	// s3, when set, is reachable from each server as s3.jecloud.test:s3Port
	// (a forwarder on the host's end of its link), and for an instance
	// launched with an instance profile sys/global.env holds keys for it:
	// what the role (through IMDS) and the VPC give a real server.
	s3        *s3test.Server
	s3Port    int
	forwarded map[string]bool // listen addresses forwarded to s3
}

type labMachine struct{ s *lab.Server }

func (m labMachine) PublicIP() string  { return m.s.Addr.String() }
func (m labMachine) PrivateIP() string { return m.s.Addr.String() }

// Console is what an EC2 serial console shows of a booting Debian: the
// kernel's and systemd's lines (none here: nspawn --console=pipe gives the
// container no /dev/console) and cloud-init's output, which Debian's
// cloud-init tees to the console and to /var/log/cloud-init-output.log.
// The fake reads it from outside, as the hypervisor does.
func (m labMachine) Console() []byte {
	out, _ := m.s.ReadFile("/var/log/cloud-init-output.log")
	return append([]byte(m.s.Console()), out...)
}
func (m labMachine) Terminate() error { return m.s.Stop() }

func (c *labCloud) Launch(ctx context.Context, spec ec2test.LaunchSpec) (ec2test.Machine, error) {
	s, err := lab.BootOne(c.t, lab.Options{CloudInit: &lab.CloudInit{UserData: spec.UserData, InstanceID: spec.InstanceID}})
	if err != nil {
		return nil, err
	}
	if err := c.mirror.install(s); err != nil {
		return nil, err
	}
	if c.s3 != nil && spec.InstanceProfile != "" { // the role's credentials
		u, _ := url.Parse(c.s3.Endpoint)
		listen := net.JoinHostPort(s.HostAddr.String(), fmt.Sprint(c.s3Port))
		c.mu.Lock()
		done := c.forwarded[listen] // a server this cloud stopped had the address (TestHeal)
		c.mu.Unlock()
		if !done {
			if err := forward(c.t, listen, u.Host); err != nil {
				return nil, err
			}
			c.mu.Lock()
			if c.forwarded == nil {
				c.forwarded = map[string]bool{}
			}
			c.forwarded[listen] = true
			c.mu.Unlock()
		}
		hosts, _ := s.ReadFile("/etc/hosts")
		if err := s.WriteFile("/etc/hosts", append(hosts, []byte(s.HostAddr.String()+" s3.jecloud.test\n")...), 0o644); err != nil {
			return nil, err
		}
		if err := s.WriteFile("/var/cloud/sys/global.env", []byte(c.s3.Env()), 0o600); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	c.booted = append(c.booted, s)
	c.mu.Unlock()
	return labMachine{s}, nil
}

// ec2World is an empty AWS account (the EC2 fake, versitygw for S3) whose
// instances are lab servers, and a user with an SSH key and the example app.
type ec2World struct {
	cloud   *labCloud
	fake    *ec2test.Server
	s3      *s3test.Server
	home    string
	app     string
	env     []string
	jeagent string
	jepush  string
}

func newEC2World(t *testing.T, envToml string) *ec2World {
	lab.Require(t)
	lab.Image(t)
	w := &ec2World{}
	w.jeagent, w.jepush = binaries(t)
	w.cloud = &labCloud{t: t, mirror: buildMirror(t)}
	w.fake = ec2test.New(t, w.cloud)
	w.s3 = s3test.Start(t, "127.0.0.1")
	// versitygw names a bucket's owner by the access key, where AWS uses the
	// account ID: the fake account is that, so the expected-owner checks hold.
	w.fake.Account = w.s3.AccessKey

	// The user: an SSH key, no agent, no known hosts, AWS credentials.
	w.home = t.TempDir()
	os.MkdirAll(filepath.Join(w.home, ".ssh"), 0o700)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := ssh.MarshalPrivateKey(priv, "")
	os.WriteFile(filepath.Join(w.home, ".ssh", "id_ed25519"), pem.EncodeToMemory(block), 0o600)
	sshPub, _ := ssh.NewPublicKey(pub)
	os.WriteFile(filepath.Join(w.home, ".ssh", "id_ed25519.pub"), ssh.MarshalAuthorizedKey(sshPub), 0o644)

	w.app = filepath.Join(t.TempDir(), "hello")
	if out, err := exec.Command("cp", "-a", filepath.Join(repoRoot(), "examples", "hello"), w.app).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	f, _ := os.OpenFile(filepath.Join(w.app, "jecloud.toml"), os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "\n[env.test]\ntarget = \"ec2\"\nregion = \"us-east-1\"\nssh_from = [\"192.168.0.0/16\"]\nagent_binary = %q\n%s", w.jeagent, envToml)
	f.Close()
	w.env = append(os.Environ(), "HOME="+w.home, "SSH_AUTH_SOCK=", "NO_COLOR=1",
		"AWS_ACCESS_KEY_ID="+w.s3.AccessKey, "AWS_SECRET_ACCESS_KEY="+w.s3.SecretKey, "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_EC2="+w.fake.URL, "AWS_ENDPOINT_URL_STS="+w.fake.URL, "AWS_ENDPOINT_URL_IAM="+w.fake.URL, "AWS_ENDPOINT_URL_S3="+w.s3.Endpoint,
		"AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2="+w.fake.URL, "AWS_ENDPOINT_URL_ACM="+w.fake.URL)
	return w
}

// jepush runs jepush with args as the user, stdin as its input.
func (w *ec2World) jepushIn(stdin string, args ...string) (string, error) {
	cmd := exec.Command(w.jepush, args...)
	cmd.Env, cmd.Stdin = w.env, strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// store opens the account's global state as the tests see it.
func (w *ec2World) store(t *testing.T) *globalstate.Store {
	c := s3.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: w.s3.Client(t).Options().Credentials}, func(o *s3.Options) {
		o.BaseEndpoint, o.UsePathStyle = aws.String(w.s3.Endpoint), true
	})
	bucket, err := globalstate.FindBucket(t.Context(), c, "us-east-1")
	if err != nil || bucket == "" {
		t.Fatalf("state bucket: %q %v", bucket, err)
	}
	return &globalstate.Store{S3: c, Bucket: bucket}
}

// TestEC2Bootstrap: `jepush examples/hello test` against an empty (fake)
// AWS account makes the state bucket, a security group and an instance
// whose cloud-init installs jeagent, checks the host key from the console,
// and ends with the example app served from the new server. A second push
// makes nothing new.
func TestEC2Bootstrap(t *testing.T) {
	w := newEC2World(t, "")
	cloud, fake, home, app, env, jepush := w.cloud, w.fake, w.home, w.app, w.env, w.jepush
	jepushIn := w.jepushIn
	push := func() (string, error) { return jepushIn("", app, "test") }

	// A first push killed (SIGKILL) right after it launched the instance.
	cmd := exec.Command(jepush, app, "test")
	cmd.Env = env
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var killedOut strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		killedOut.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), ": launched i-") {
			cmd.Process.Kill()
			break
		}
	}
	go io.Copy(io.Discard, pr)
	cmd.Wait()
	pw.Close()
	t.Logf("first push, killed after the launch:\n%s", killedOut.String())

	start := time.Now()
	out, err := push()
	t.Logf("second push (resumes: cloud-init, host keys, jeagent, deploy): %s\n%s", time.Since(start).Round(time.Second), out)
	if err != nil {
		for _, s := range cloud.booted {
			o, _ := s.Exec(t.Context(), "sh", "-c", "cloud-init status --long; systemctl status --no-pager jecloud-install.service; tail -30 /var/log/cloud-init-output.log")
			t.Logf("%s:\n%s", s.Name, o)
		}
		t.Fatalf("jepush: %v", err)
	}
	contains(t, "the resumed push", out, "hello-test-1: waiting for i-")
	if n := fake.Calls("RunInstances"); n != 1 || len(cloud.booted) != 1 {
		t.Fatalf("RunInstances called %d times, %d servers booted: the interrupted bootstrap was not resumed", n, len(cloud.booted))
	}
	srv := cloud.booted[0]
	// Served through the front door on port 80, and the push said where.
	url := "http://" + srv.Addr.String() + "/"
	contains(t, "the resumed push", out, "hello test: served at "+url)
	eventually(t, 20*time.Second, "the app answers at "+url, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode == 200
	})
	t.Logf("served at %s", url)

	// A domain: kept in the server's app.json and the global state, loaded
	// into the front door by the roll-forward, and named by the next push.
	if out, err := jepushIn("", "domains:add", "test", "hello.example.com", "--dir", app); err != nil {
		t.Fatalf("jepush domains:add: %v\n%s", err, out)
	}
	contains(t, "app.json", srv.MustExec("cat", "/var/cloud/hello/test/app.json"), `"hello.example.com"`)
	if doc, _, err := w.store(t).Get(t.Context(), "hello", "test"); err != nil || doc.Routing == nil || !slices.Contains(doc.Routing.Domains, "hello.example.com") {
		t.Errorf("global state routing: %v %+v", err, doc)
	}
	eventually(t, 20*time.Second, "the front door routes hello.example.com", func() bool {
		out, _ := srv.Exec(t.Context(), "cat", "/var/cloud/sys/proxy/caddy.json")
		return strings.Contains(out, `"hello.example.com"`)
	})
	out, err = push()
	if err != nil {
		t.Fatalf("push after domains:add: %v\n%s", err, out)
	}
	contains(t, "push after domains:add", out, "hello test: served at "+url, "hello test: served at https://hello.example.com/")
	// The front door's access log of the app: the requests above, one readable line each.
	out, err = jepushIn("", "logs", "test", "--proxy", "-n", "5", "--dir", app)
	if err != nil || !regexp.MustCompile(`(?m)^\S+Z \S+ GET 192\.168\.213\.\d+ / 200 \S+ `).MatchString(out) {
		t.Errorf("jepush logs --proxy: %v\n%s", err, out)
	}
	t.Logf("jepush logs test --proxy:\n%s", out)

	// What the server is: cloud-init's deploy user with sudo for jeagent only,
	// IMDSv2 only, a role that reads its bundles and state and nothing else.
	inst := fake.Instances()[0]
	if inst.HTTPTokens != "required" || inst.InstanceProfile != "jecloud-hello_test" {
		t.Errorf("instance: IMDS tokens %q, profile %q", inst.HTTPTokens, inst.InstanceProfile)
	}
	policy := fake.RolePolicy("jecloud-hello_test", "jecloud-state")
	contains(t, "role policy", policy, `/bundles/hello/*"`, `/envs/hello/test.json"`, `"s3:GetObject"`, `/envs/hello/test/observed/${aws:userid}.json"`)
	if strings.Contains(policy, `"s3:*"`) || strings.Contains(policy, `"Resource":"*"`) {
		t.Errorf("the role may do too much: %s", policy)
	}
	contains(t, "instance tags", fmt.Sprint(inst.Tags), "jecloud:app:hello", "jecloud:env:test")
	contains(t, "sudoers", srv.MustExec("sh", "-c", "cat /etc/sudoers.d/90-cloud-init-users"), "jecloud ALL=(root) NOPASSWD: /usr/local/bin/jeagent")
	// jeagent-tick came with it (it sits beside jeagent in the build), and the timer runs it.
	contains(t, "the roll-forward unit", srv.MustExec("systemctl", "cat", "jeagent-rollforward.service"),
		"ExecStart=/usr/local/bin/jeagent-tick --agent /usr/local/bin/jeagent")
	if out, err := srv.Exec(t.Context(), "runuser", "-u", "jecloud", "--", "sudo", "-n", "cat", "/etc/shadow"); err == nil {
		t.Errorf("the deploy user can run anything as root: %s", out)
	}
	known, _ := os.ReadFile(filepath.Join(home, ".ssh", "known_hosts"))
	contains(t, "known_hosts", string(known), srv.Addr.String()+" ssh-ed25519 ", "jecloud:hello/test/hello-test-1")

	// The global state: one document, the server with its host keys.
	st := w.store(t)
	e, _, err := st.Get(t.Context(), "hello", "test")
	if err != nil || len(e.Servers) != 1 {
		t.Fatalf("state: %+v %v", e, err)
	}
	b, _ := json.MarshalIndent(e, "", "  ")
	t.Logf("%s:\n%s", st.URL("hello", "test"), b)
	if s := e.Servers[0]; s.Host != srv.Addr.String() || s.InstanceID != inst.ID || len(s.HostKeys) == 0 || !s.Ready() || s.User != bootstrap.DeployUser {
		t.Errorf("server in the state: %+v", s)
	}

	// Again: nothing new is made; the push goes to the same server.
	out, err = push()
	if err != nil {
		t.Fatalf("second push: %v\n%s", err, out)
	}
	if n := fake.Calls("RunInstances"); n != 1 {
		t.Errorf("the second push launched again (%d RunInstances)", n)
	}
	contains(t, "third push", out, "already live")
	// Other commands find the servers in the global state and make none.
	out, err = jepushIn("", "ps", "test", "--dir", app)
	if err != nil || !strings.Contains(out, "web.") {
		t.Errorf("jepush ps test: %v\n%s", err, out)
	}
	if n := fake.Calls("RunInstances"); n != 1 {
		t.Errorf("jepush ps launched an instance")
	}
	// Requests: the resumed push, the push after domains:add, the one above.
	if e, _, _ := st.Get(t.Context(), "hello", "test"); e.Requested == nil || len(e.History) != 3 {
		t.Errorf("requests in the state: %+v, history %+v", e.Requested, e.History)
	}

	// An instance of the same account that JeCloud did not make.
	other, err := ec2Client(t, fake).RunInstances(t.Context(), &ec2.RunInstancesInput{ImageId: aws.String("ami-0debian12amd64"),
		InstanceType: ec2types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	otherID := aws.ToString(other.Instances[0].InstanceId)

	// Scale to 2: a second server is made; the next push deploys to both.
	if out, err := jepushIn("", "scale", "test", "2", "--dir", app); err != nil {
		t.Fatalf("scale 2: %v\n%s", err, out)
	}
	out, err = push()
	if err != nil {
		t.Fatalf("push to 2 servers: %v\n%s", err, out)
	}
	contains(t, "push to 2 servers", out, "hello-test-2", "is live on jecloud@")
	out, _ = jepushIn("", "servers", "test", "--dir", app)
	t.Logf("jepush servers test:\n%s", out)
	contains(t, "servers", out, "hello-test-1", "hello-test-2", "running", "ready")
	second := fake.Instances()
	var web2 *lab.Server
	for _, s := range cloud.booted[1:] {
		if s.Addr.String() != "" && strings.Contains(out, s.Addr.String()) {
			web2 = s
		}
	}
	if web2 == nil {
		t.Fatalf("the second server is not listed (%d booted, %d instances)", len(cloud.booted), len(second))
	}
	eventually(t, 20*time.Second, "the second server serves", func() bool {
		resp, err := http.Get("http://" + web2.Addr.String() + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	// Back to 1: the newest goes.
	if out, err := jepushIn("", "scale", "test", "1", "--dir", app); err != nil {
		t.Fatalf("scale 1: %v\n%s", err, out)
	}
	states := func() map[string]string {
		m := map[string]string{}
		for _, in := range fake.Instances() {
			m[in.ID] = in.State
		}
		return m
	}
	eventually(t, 60*time.Second, "hello-test-2 terminated", func() bool {
		n := 0
		for _, st := range states() {
			if st == "terminated" {
				n++
			}
		}
		return n == 1
	})

	// destroy: refused without the confirmation; then only what JeCloud tagged goes.
	if out, err := jepushIn("prod\n", "destroy", "test", "--dir", app); err == nil || !strings.Contains(out, "nothing was terminated") {
		t.Errorf("destroy with a wrong confirmation: %v\n%s", err, out)
	}
	if states()[inst.ID] != "running" {
		t.Fatalf("an unconfirmed destroy terminated %s", inst.ID)
	}
	out, err = jepushIn("test\n", "destroy", "test", "--dir", app)
	if err != nil {
		t.Fatalf("destroy: %v\n%s", err, out)
	}
	t.Logf("jepush destroy test:\n%s", out)
	if s := states(); s[inst.ID] != "terminated" || s[otherID] != "running" {
		t.Errorf("after destroy: %v (the untagged %s must run on)", s, otherID)
	}
	// The environment's group, and its load balancer's (two web servers).
	if n := fake.Calls("DeleteSecurityGroup"); n != 2 {
		t.Errorf("%d security groups deleted, want 2 (the environment's and its balancer's)", n)
	}
	if len(fake.Balancers()) != 0 {
		t.Errorf("balancers left after destroy: %+v", fake.Balancers())
	}
	if fake.RolePolicy("jecloud-hello_test", "jecloud-state") != "" || fake.Calls("DeleteRole") != 1 {
		t.Errorf("the role was not deleted")
	}
	// (the three requests above, and the push that made the second server)
	if e, _, _ := st.Get(t.Context(), "hello", "test"); len(e.Servers) != 0 || len(e.History) != 4 {
		t.Errorf("state after destroy: servers %+v, history %d", e.Servers, len(e.History))
	}
}

func ec2Client(t *testing.T, fake *ec2test.Server) *ec2.Client {
	return ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(fake.URL),
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")})
}

// forward relays TCP connections from listen to to until the test ends.
func forward(t *testing.T, listen, to string) error {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				d, err := net.Dial("tcp", to)
				if err != nil {
					return
				}
				defer d.Close()
				go func() { io.Copy(d, c); d.(*net.TCPConn).CloseWrite() }()
				io.Copy(c, d)
			}()
		}
	}()
	return nil
}

// TestRollingDeploy: an environment of three EC2 servers that deploy
// through S3: jepush uploads the bundle once and requests the version in
// the global state; the servers take it one at a time (max_parallel = 1),
// and while the new version rolls out there is never a moment when no
// server answers.
func TestRollingDeploy(t *testing.T) {
	t.Parallel() // mostly waiting (docs/lab.md: lab tests in parallel)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	w := newEC2World(t, fmt.Sprintf("servers = 3\ndeploy = \"s3\"\nmax_parallel = 1\nserver_s3_endpoint = \"http://s3.jecloud.test:%d\"\n", port))
	w.cloud.s3, w.cloud.s3Port = w.s3, port

	start := time.Now()
	out, err := w.jepushIn("", w.app, "test")
	t.Logf("first push (3 servers made, v1 through S3): %s\n%s", time.Since(start).Round(time.Second), out)
	if err != nil {
		t.Fatalf("jepush: %v", err)
	}
	if len(w.cloud.booted) != 3 {
		t.Fatalf("%d servers booted, want 3", len(w.cloud.booted))
	}
	contains(t, "first push", out, "uploading to s3://", "at bundles/hello/", "requested ", "is live on hello-test-1, hello-test-2, hello-test-3")
	st := w.store(t)
	serves := func(s *lab.Server) bool {
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get("http://" + s.Addr.String() + "/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode == 200
	}
	for _, s := range w.cloud.booted {
		eventually(t, 20*time.Second, s.Name+" serves v1", func() bool { return serves(s) })
	}

	// v2, watched: every 50 ms each server is asked for /, and the document
	// is read for how many servers are switching at once.
	os.WriteFile(filepath.Join(w.app, "version.txt"), []byte("2\n"), 0o644)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	rounds, allDown, maxSwitching := 0, 0, 0
	failed := map[string]int{}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			up := 0
			var rw sync.WaitGroup
			var rmu sync.Mutex
			for _, s := range w.cloud.booted {
				rw.Add(1)
				go func() {
					defer rw.Done()
					ok := serves(s)
					rmu.Lock()
					if ok {
						up++
					} else {
						failed[s.Name]++
					}
					rmu.Unlock()
				}()
			}
			rw.Wait()
			mu.Lock()
			rounds++
			if up == 0 {
				allDown++
			}
			mu.Unlock()
		}
	}()
	// Switching is read on the servers themselves: a server switches while
	// its app.json holds a deployment (from a won claim to live). Each read
	// is timed; two reads that both saw a deployment, with none between
	// that did not, prove it was under way for the whole time between them
	// (one deployment per server per rollout), so overlaps of those spans
	// are certain, whatever the order of the reads. (The observation
	// objects in S3 are no measure: a claim is written before it is
	// checked, and withdrawn when the slot is taken.)
	type span struct{ from, to time.Time }
	sure := map[string][]span{}
	go func() {
		defer wg.Done()
		type seen struct{ at, end time.Time }
		run := map[string]*seen{} // per server: the first read of the current run of reads that saw a deployment, and the last
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			for _, s := range w.cloud.booted {
				t0 := time.Now()
				b, err := s.ReadFile("/var/cloud/hello/test/app.json")
				t1 := time.Now()
				if err != nil {
					continue
				}
				var a struct{ Deployment *struct{ Version string } }
				if json.Unmarshal(b, &a) != nil {
					continue
				}
				r := run[s.Name]
				switch {
				case a.Deployment != nil && r == nil:
					run[s.Name] = &seen{at: t1, end: t1}
				case a.Deployment != nil:
					r.end = t0
				case r != nil:
					if r.end.After(r.at) {
						mu.Lock()
						sure[s.Name] = append(sure[s.Name], span{r.at, r.end})
						mu.Unlock()
					}
					run[s.Name] = nil
				}
			}
		}
	}()
	start = time.Now()
	var result bytes.Buffer // --json: where each server stands, on stdout
	push := exec.Command(w.jepush, "push", w.app, "test", "--json")
	var progress bytes.Buffer
	push.Env, push.Stdout, push.Stderr = w.env, &result, &progress
	err = push.Run()
	out = progress.String()
	took := time.Since(start)
	close(stop)
	wg.Wait()
	for a, as := range sure {
		for b, bs := range sure {
			if a >= b {
				continue
			}
			for _, x := range as {
				for _, y := range bs {
					if x.from.Before(y.to) && y.from.Before(x.to) {
						maxSwitching = 2
						t.Logf("%s switched %s to %s and %s %s to %s", a, x.from.Format("15:04:05.000"), x.to.Format("15:04:05.000"), b, y.from.Format("15:04:05.000"), y.to.Format("15:04:05.000"))
					}
				}
			}
		}
	}
	if len(sure) > 0 && maxSwitching == 0 {
		maxSwitching = 1
	}
	t.Logf("second push (v2 rolled out through S3): %s\n%s", took.Round(time.Second), out)
	if err != nil {
		t.Fatalf("jepush v2: %v", err)
	}
	e, _, err := st.Get(t.Context(), "hello", "test")
	if err != nil || e.Requested == nil {
		t.Fatalf("state: %+v %v", e, err)
	}
	if err := st.Observe(t.Context(), e); err != nil { // each server reports in an object of its own
		t.Fatal(err)
	}
	v2 := e.Requested.Version
	for _, s := range e.Servers {
		if s.Observed == nil || s.Observed.CurrentVersion != v2 {
			t.Errorf("%s observed %+v, want %s live", s.Name, s.Observed, v2)
		}
	}
	for _, s := range w.cloud.booted {
		b, _ := s.ReadFile("/var/cloud/hello/test/app.json")
		if !strings.Contains(string(b), `"current_version": "`+v2+`"`) {
			t.Errorf("%s app.json: %s", s.Name, b)
		}
	}
	var res struct {
		OK    bool `json:"ok"`
		Hosts []struct{ Host, Version, Live, State string }
	}
	if err := json.Unmarshal(result.Bytes(), &res); err != nil || !res.OK || len(res.Hosts) != 3 {
		t.Fatalf("push --json: %v\n%s", err, result.String())
	}
	for _, h := range res.Hosts {
		if h.Version != v2 || h.Live != v2 || h.State != "live" {
			t.Errorf("push --json: %+v, want version and live %s, state live", h, v2)
		}
	}
	t.Logf("summary: rolling deploy of 3 servers (max_parallel 1) in %s: %d rounds of requests to all 3 every 50 ms, %d with no server answering; failed requests per server %v; at most %d server(s) switching at once (app.json read on the servers every 20 ms, switches seen on %d servers)",
		took.Round(time.Second), rounds, allDown, failed, maxSwitching, len(sure))
	if allDown != 0 {
		t.Errorf("%d rounds with the whole environment down", allDown)
	}
	if maxSwitching > 1 {
		t.Errorf("%d servers switched at once, max_parallel is 1", maxSwitching)
	}
	if rounds < 10 || len(sure) < 3 {
		t.Errorf("only %d rounds, %d servers seen switching: the watch saw too little", rounds, len(sure))
	}
}
