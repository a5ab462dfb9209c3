package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/jecloud/jecloud/internal/shellquote"
)

// SSH runs the agent on a server over one SSH connection.
type SSH struct {
	name   string
	agent  string // the agent command line, for the remote shell
	root   string
	client *ssh.Client
	heard  *heardConn    // the client's connection, for keepalives
	jumps  []*ssh.Client // closed after client, last first

	done     chan struct{} // closed by Close
	lost     chan struct{} // closed when keepalives give up
	lostErr  error
	lostOnce sync.Once
	closeOne sync.Once
}

// maxJumps limits ProxyJump chains (and loops in the ssh config).
const maxJumps = 8

// DialSSH connects to t.Dest: ssh config applied, through its ProxyJump
// hosts if any, host key checked against known_hosts, logged in with the
// agent's keys or the identity files. The connection is kept alive (and
// given up when the keepalives go unanswered).
func DialSSH(ctx context.Context, t Target, o SSHOptions) (*SSH, error) {
	d, err := ParseDest(t.Dest)
	if err != nil {
		return nil, err
	}
	cs, err := o.loadConfigs()
	if err != nil {
		return nil, err
	}
	hc, err := o.resolve(cs, d)
	if err != nil {
		return nil, err
	}
	s := &SSH{name: t.Dest, root: t.Root, done: make(chan struct{}), lost: make(chan struct{})}
	c, jumps, err := o.dial(ctx, cs, hc, 0)
	if err != nil {
		return nil, err
	}
	s.client, s.heard = c.Client, c.heard
	for _, j := range jumps {
		s.jumps = append(s.jumps, j.Client)
	}
	s.agent = strings.TrimSpace(t.Agent)
	if s.agent == "" {
		s.agent = "jeagent"
		if hc.User != "root" {
			s.agent = "sudo -n jeagent"
		}
	}
	go s.keepalive(hc.KeepaliveInterval, hc.KeepaliveCountMax)
	return s, nil
}

// conn is an SSH connection and the transport under it.
type conn struct {
	*ssh.Client
	heard *heardConn
}

// dial connects to hc, through its jump hosts. It returns the connection
// and the jump hosts' connections it made.
func (o *SSHOptions) dial(ctx context.Context, cs *sshConfigs, hc *hostConfig, depth int) (*conn, []*conn, error) {
	if len(hc.ProxyJump) == 0 {
		nc, err := (&net.Dialer{Timeout: hc.ConnectTimeout}).DialContext(ctx, "tcp", hc.Addr())
		if err != nil {
			return nil, nil, fmt.Errorf("connect to %s (%s): %w", hc.Alias, hc.Addr(), err)
		}
		c, err := o.handshake(ctx, nc, hc)
		return c, nil, err
	}
	if depth+len(hc.ProxyJump) > maxJumps {
		return nil, nil, fmt.Errorf("connect to %s: more than %d ProxyJump hops (a loop in the ssh config?)", hc.Alias, maxJumps)
	}
	var jumps []*conn
	fail := func(err error) (*conn, []*conn, error) {
		for i := len(jumps) - 1; i >= 0; i-- {
			jumps[i].Close()
		}
		return nil, nil, err
	}
	var via *conn
	for i, j := range hc.ProxyJump {
		jd, err := ParseDest(j)
		if err != nil {
			return fail(fmt.Errorf("ProxyJump of %s: %w", hc.Alias, err))
		}
		jhc, err := o.resolve(cs, jd)
		if err != nil {
			return fail(err)
		}
		if i == 0 {
			// The first hop is reached as the ssh config says, itself
			// possibly through other jumps.
			c, more, err := o.dial(ctx, cs, jhc, depth+len(hc.ProxyJump))
			if err != nil {
				return fail(fmt.Errorf("jump host for %s: %w", hc.Alias, err))
			}
			jumps = append(jumps, more...)
			via = c
		} else {
			c, err := o.dialVia(ctx, via, jhc)
			if err != nil {
				return fail(fmt.Errorf("jump host for %s: %w", hc.Alias, err))
			}
			via = c
		}
		jumps = append(jumps, via)
	}
	c, err := o.dialVia(ctx, via, hc)
	if err != nil {
		return fail(err)
	}
	return c, jumps, nil
}

// dialVia connects to hc through an SSH connection (direct-tcpip).
func (o *SSHOptions) dialVia(ctx context.Context, via *conn, hc *hostConfig) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, hc.ConnectTimeout)
	defer cancel()
	nc, err := via.DialContext(dctx, "tcp", hc.Addr())
	if err != nil {
		return nil, fmt.Errorf("connect to %s (%s) through %s: %w", hc.Alias, hc.Addr(), via.RemoteAddr(), err)
	}
	return o.handshake(ctx, nc, hc)
}

// handshake runs the SSH handshake and login on nc, within hc's connect
// timeout; nc is closed on failure.
func (o *SSHOptions) handshake(ctx context.Context, nc net.Conn, hc *hostConfig) (*conn, error) {
	heard := &heardConn{Conn: nc}
	hk, err := newHostKeys(hc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	k := loadKeys(hc)
	defer k.close()
	if len(k.signers) == 0 {
		nc.Close()
		return nil, k.authError(hc, nil)
	}
	cfg := &ssh.ClientConfig{
		User:              hc.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(k.signers...)},
		HostKeyCallback:   hk.check,
		HostKeyAlgorithms: hk.algos,
		ClientVersion:     "SSH-2.0-jepush",
	}
	// Net deadlines do not work on connections through a jump host, so a
	// watchdog closes the connection when the handshake takes too long.
	var timedOut bool
	var mu sync.Mutex
	stop := make(chan struct{})
	go func() {
		t := time.NewTimer(hc.ConnectTimeout)
		defer t.Stop()
		select {
		case <-stop:
			return
		case <-t.C:
		case <-ctx.Done():
		}
		mu.Lock()
		timedOut = true
		mu.Unlock()
		nc.Close()
	}()
	c, chans, reqs, err := ssh.NewClientConn(heard, hc.Addr(), cfg)
	close(stop)
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		nc.Close()
		var he *HostKeyError
		switch {
		case errors.As(err, &he):
			return nil, he
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case timedOut:
			return nil, fmt.Errorf("connect to %s (%s): no SSH handshake within %s: is it an SSH server, and reachable?", hc.Alias, hc.Addr(), hc.ConnectTimeout)
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, k.authError(hc, err)
		}
		return nil, fmt.Errorf("connect to %s (%s): %w", hc.Alias, hc.Addr(), err)
	}
	if timedOut { // the watchdog fired just as the handshake ended
		c.Close()
		return nil, fmt.Errorf("connect to %s (%s): timed out", hc.Alias, hc.Addr())
	}
	return &conn{Client: ssh.NewClient(c, chans, reqs), heard: heard}, nil
}

// Name returns the destination as the user wrote it.
func (s *SSH) Name() string { return s.name }

// Close closes the connection and its jump hosts'.
func (s *SSH) Close() error {
	var err error
	s.closeOne.Do(func() {
		close(s.done)
		err = s.client.Close()
		for i := len(s.jumps) - 1; i >= 0; i-- {
			s.jumps[i].Close()
		}
	})
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Command returns the command line run on the server for argv.
func (s *SSH) Command(argv []string) string {
	return s.agent + " " + shellquote.Join(agentArgs(s.root, argv))
}

// Run runs the agent on the server in a new session.
func (s *SSH) Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return s.run(ctx, s.Command(argv), argv, stdin, stdout, stderr)
}

// Shell runs a shell command line on the server (the bootstrap's upload
// of jeagent, before there is an agent to run).
func (s *SSH) Shell(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	return s.run(ctx, cmd, []string{cmd}, stdin, stdout, stderr)
}

func (s *SSH) run(ctx context.Context, cmd string, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	select {
	case <-s.lost:
		return s.lostErr
	default:
	}
	sess, err := s.client.NewSession()
	if err != nil {
		return s.connErr(fmt.Errorf("open session on %s: %w", s.name, err))
	}
	defer sess.Close()
	// The server may keep the session (and send output) until the command
	// ends even after we close it, so writes go through a gate that is shut
	// when Run returns early: nothing is written after Run returns.
	g := &gate{}
	sess.Stdin, sess.Stdout, sess.Stderr = stdin, g.writer(stdout), g.writer(stderr)
	if err := sess.Start(cmd); err != nil {
		return s.connErr(fmt.Errorf("start jeagent on %s: %w", s.name, err))
	}
	waited := make(chan error, 1)
	go func() { waited <- sess.Wait() }()
	select {
	case err = <-waited:
	case <-ctx.Done():
		// Ask the agent to stop (OpenSSH honours this only for non-root
		// logins); closing the session ends what it sends us.
		g.shut()
		_ = sess.Signal(ssh.SIGTERM)
		sess.Close()
		return ctx.Err()
	case <-s.lost:
		g.shut()
		sess.Close()
		return s.lostErr
	}
	return s.exitErr(argv, err)
}

// exitErr turns how a session of argv ended into nil, an *ExitError with
// its status, a killed-by-signal error or ErrConnectionLost.
func (s *SSH) exitErr(argv []string, err error) error {
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee) && ee.ExitStatus() > 0:
		return &ExitError{Target: s.name, Argv: argv, Code: ee.ExitStatus()}
	case errors.As(err, &ee):
		return fmt.Errorf("%s: jeagent %s killed by signal %s", s.name, argv[0], ee.Signal())
	}
	return s.connErr(err)
}

// connErr turns a failure of the connection into ErrConnectionLost.
func (s *SSH) connErr(err error) error {
	select {
	case <-s.lost:
		return s.lostErr
	default:
	}
	var em *ssh.ExitMissingError
	if errors.As(err, &em) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("connection to %s lost before the command ended: %w", s.name, ErrConnectionLost)
	}
	return err
}

// keepalive sends keepalive@openssh.com every interval and closes the
// connection after max of them in a row went unanswered, so that a dead
// network ends a push with an error instead of a hang.
func (s *SSH) keepalive(interval time.Duration, max int) {
	t := time.NewTicker(interval)
	defer t.Stop()
	misses := 0
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		sent := time.Now()
		answered := make(chan error, 1)
		go func() {
			_, _, err := s.client.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
		select {
		case <-s.done:
			return
		case err := <-answered:
			if err == nil {
				misses = 0
				continue
			}
			misses = max // the connection is gone already
		case <-time.After(interval):
			// Behind a big upload the answer may be slow to come; any
			// byte from the server meanwhile shows it is there.
			if s.heard.since(sent) {
				misses = 0
				continue
			}
			misses++
		}
		if misses >= max {
			s.lostOnce.Do(func() {
				s.lostErr = fmt.Errorf("connection to %s lost: no answer to %d keepalives in %s: %w", s.name, max, time.Duration(max)*interval, ErrConnectionLost)
				close(s.lost)
			})
			s.client.Close()
			return
		}
	}
}

// gate guards writers that a session may still write to after Run returned.
type gate struct {
	mu     sync.Mutex
	closed bool
}

var errGateShut = errors.New("output no longer wanted")

func (g *gate) shut() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

func (g *gate) writer(w io.Writer) io.Writer {
	if w == nil {
		return nil
	}
	return gatedWriter{g, w}
}

type gatedWriter struct {
	g *gate
	w io.Writer
}

func (gw gatedWriter) Write(p []byte) (int, error) {
	gw.g.mu.Lock()
	defer gw.g.mu.Unlock()
	if gw.g.closed {
		return 0, errGateShut
	}
	return gw.w.Write(p)
}

// heardConn remembers when the server last sent something.
type heardConn struct {
	net.Conn
	last atomic.Int64 // unix nanoseconds
}

func (c *heardConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// since reports whether the server sent something after t.
func (c *heardConn) since(t time.Time) bool { return c.last.Load() > t.UnixNano() }
