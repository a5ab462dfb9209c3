//go:build e2e

package e2e_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	c.mu.Lock()
	c.booted = append(c.booted, s)
	c.mu.Unlock()
	return labMachine{s}, nil
}

// TestEC2Bootstrap: `jepush examples/hello test` against an empty (fake)
// AWS account makes the state bucket, a security group and an instance
// whose cloud-init installs jeagent, checks the host key from the console,
// and ends with the example app served from the new server. A second push
// makes nothing new.
func TestEC2Bootstrap(t *testing.T) {
	lab.Require(t)
	lab.Image(t)
	jeagent, jepush := binaries(t)
	cloud := &labCloud{t: t, mirror: buildMirror(t)}
	fake := ec2test.New(t, cloud)
	s3srv := s3test.Start(t, "127.0.0.1")
	// versitygw names a bucket's owner by the access key, where AWS uses the
	// account ID: the fake account is that, so the expected-owner checks hold.
	fake.Account = s3srv.AccessKey

	// The user: an SSH key, no agent, no known hosts, AWS credentials.
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := ssh.MarshalPrivateKey(priv, "")
	os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), pem.EncodeToMemory(block), 0o600)
	sshPub, _ := ssh.NewPublicKey(pub)
	os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519.pub"), ssh.MarshalAuthorizedKey(sshPub), 0o644)

	app := filepath.Join(t.TempDir(), "hello")
	if out, err := exec.Command("cp", "-a", filepath.Join(repoRoot(), "examples", "hello"), app).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	f, _ := os.OpenFile(filepath.Join(app, "jecloud.toml"), os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "\n[env.test]\ntarget = \"ec2\"\nregion = \"us-east-1\"\nssh_from = [\"192.168.0.0/16\"]\nports = [5000]\nagent_binary = %q\n", jeagent)
	f.Close()
	env := append(os.Environ(), "HOME="+home, "SSH_AUTH_SOCK=", "NO_COLOR=1",
		"AWS_ACCESS_KEY_ID="+s3srv.AccessKey, "AWS_SECRET_ACCESS_KEY="+s3srv.SecretKey, "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_EC2="+fake.URL, "AWS_ENDPOINT_URL_STS="+fake.URL, "AWS_ENDPOINT_URL_S3="+s3srv.Endpoint)
	jepushIn := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(jepush, args...)
		cmd.Env, cmd.Stdin = env, strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
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
	url := "http://" + srv.Addr.String() + ":5000/"
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

	// What the server is: cloud-init's deploy user with sudo for jeagent only, IMDSv2.
	inst := fake.Instances()[0]
	contains(t, "instance tags", fmt.Sprint(inst.Tags), "jecloud:app:hello", "jecloud:env:test")
	contains(t, "sudoers", srv.MustExec("sh", "-c", "cat /etc/sudoers.d/90-cloud-init-users"), "jecloud ALL=(root) NOPASSWD: /usr/local/bin/jeagent")
	if out, err := srv.Exec(t.Context(), "runuser", "-u", "jecloud", "--", "sudo", "-n", "cat", "/etc/shadow"); err == nil {
		t.Errorf("the deploy user can run anything as root: %s", out)
	}
	known, _ := os.ReadFile(filepath.Join(home, ".ssh", "known_hosts"))
	contains(t, "known_hosts", string(known), srv.Addr.String()+" ssh-ed25519 ", "jecloud:hello/test/hello-test-1")

	// The global state: one document, the server with its host keys.
	c := s3.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: s3srv.Client(t).Options().Credentials}, func(o *s3.Options) {
		o.BaseEndpoint, o.UsePathStyle = aws.String(s3srv.Endpoint), true
	})
	bucket, err := globalstate.FindBucket(t.Context(), c, "us-east-1")
	if err != nil || bucket == "" {
		t.Fatalf("state bucket: %q %v", bucket, err)
	}
	st := &globalstate.Store{S3: c, Bucket: bucket}
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
	if e, _, _ := st.Get(t.Context(), "hello", "test"); e.Requested == nil || len(e.History) != 2 {
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
		resp, err := http.Get("http://" + web2.Addr.String() + ":5000/")
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
	if fake.Calls("DeleteSecurityGroup") != 1 {
		t.Errorf("the security group was not deleted")
	}
	if e, _, _ := st.Get(t.Context(), "hello", "test"); len(e.Servers) != 0 || len(e.History) != 3 {
		t.Errorf("state after destroy: servers %+v, history %d", e.Servers, len(e.History))
	}
}

func ec2Client(t *testing.T, fake *ec2test.Server) *ec2.Client {
	return ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(fake.URL),
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")})
}
