package ec2test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A real HAProxy stands for each application load balancer's HTTP
// listener: its frontend, on a free loopback port, is the balancer's DNS
// name; its backend has a server slot per target (a server-template of
// hapSlots, in maintenance until used), checked at the target group's
// health path every HealthCheckIntervalSeconds with its thresholds. The
// fake changes it through the runtime API on its stats socket: a
// registered target's slot gets the instance's private address and is
// made ready with its health down (initial, as on AWS, until the checks
// pass); a deregistered one is put in maintenance at once (no new
// requests; those under way finish), and its slot is freed when the
// deregistration delay is over.

// hapSlots is how many targets one group can have with HAProxy.
const hapSlots = 16

// SetHAProxy makes each HTTP listener created from now on a real HAProxy
// run from path (exec.LookPath("haproxy")); "" (the default) keeps the
// balancers on paper: targets are healthy as soon as registered.
func (s *Server) SetHAProxy(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.haproxyPath = path
}

type haproxy struct {
	dir, front, sock string
	cmd              *exec.Cmd
	done             chan struct{}
	applied          map[int]string // slot: "ADDR:PORT" in service, "" in maintenance
}

// startHAProxy starts the HAProxy of lb's listener forwarding to tg; with
// pemFile (a certificate and its key) it terminates TLS.
func (s *Server) startHAProxy(lb *loadBalancer, tg *targetGroup, pemFile []byte) (*haproxy, error) {
	dir, err := os.MkdirTemp("", "ec2test-haproxy-")
	if err != nil {
		return nil, err
	}
	s.t.Cleanup(func() { os.RemoveAll(dir) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	front := l.Addr().String()
	l.Close()
	h := &haproxy{dir: dir, front: front, sock: filepath.Join(dir, "admin.sock"), done: make(chan struct{}), applied: map[int]string{}}
	bind, proto, port := front, "http", "80" // what an ALB's listener on 80 says
	if pemFile != nil {
		proto, port = "https", "443"
		crt := filepath.Join(dir, "cert.pem")
		if err := os.WriteFile(crt, pemFile, 0o600); err != nil {
			return nil, err
		}
		bind += " ssl crt " + crt
	}
	s.mu.Lock()
	cfg := fmt.Sprintf(`# %s (%s), listener HTTP forwarding to %s
global
    stats socket %s mode 600 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout check %ds
frontend lb
    bind %s
    option forwardfor
    http-request set-header X-Forwarded-Proto %s
    http-request set-header X-Forwarded-Port %s
    default_backend tg
backend tg
    balance roundrobin
    option httpchk
    http-check send meth GET uri %s
    http-check expect status %s
    default-server inter %ds fall %d rise %d
    server-template t 1-%d 0.0.0.0:%d check disabled
`, lb.name, lb.dns, tg.name, h.sock, tg.timeout, bind, proto, port, tg.path, tg.matcher, tg.interval, tg.unhealthy, tg.healthy, hapSlots, tg.port)
	path := s.haproxyPath
	s.mu.Unlock()
	if err := os.WriteFile(filepath.Join(dir, "haproxy.cfg"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "haproxy.log"))
	if err != nil {
		return nil, err
	}
	h.cmd = exec.Command(path, "-db", "-f", filepath.Join(dir, "haproxy.cfg"))
	h.cmd.Stdout, h.cmd.Stderr = log, log
	if err := h.cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("haproxy for %s: %w", lb.name, err)
	}
	go func() { h.cmd.Wait(); log.Close(); close(h.done) }()
	s.t.Cleanup(h.stop)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := h.run("show info"); err == nil {
			return h, nil
		}
		select {
		case <-h.done:
			b, _ := os.ReadFile(filepath.Join(dir, "haproxy.log"))
			return nil, fmt.Errorf("haproxy for %s exited: %s", lb.name, b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			h.stop()
			return nil, fmt.Errorf("haproxy for %s: its stats socket does not answer", lb.name)
		}
	}
}

// stop ends HAProxy (once is enough; again is harmless).
func (h *haproxy) stop() {
	select {
	case <-h.done:
		return
	default:
	}
	h.cmd.Process.Kill()
	<-h.done
}

// run sends one runtime API command line and returns the answer.
func (h *haproxy) run(line string) (string, error) {
	c, err := net.DialTimeout("unix", h.sock, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
		return "", err
	}
	var b strings.Builder
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return b.String(), sc.Err()
}

// status returns each slot's status as `show stat` says (UP, DOWN,
// "DOWN 1/2", MAINT, ...).
func (h *haproxy) status() (map[int]string, error) {
	out, err := h.run("show stat")
	if err != nil {
		return nil, err
	}
	st := map[int]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, ",")
		if len(f) > 17 && f[0] == "tg" && strings.HasPrefix(f[1], "t") {
			if n, err := strconv.Atoi(f[1][1:]); err == nil {
				st[n] = f[17]
			}
		}
	}
	return st, nil
}

// syncHAProxy ends the drains of tgArn's targets that are over and brings
// the HAProxy of each listener forwarding to it in line with its targets.
func (s *Server) syncHAProxy(tgArn string) {
	s.hapMu.Lock()
	defer s.hapMu.Unlock()
	s.mu.Lock()
	tg := s.tgByArn(tgArn)
	if tg == nil {
		s.mu.Unlock()
		return
	}
	now := time.Now()
	want := map[int]string{}
	used := map[int]bool{}
	var kept []*target
	for _, t := range tg.targets {
		if t.draining && !now.Before(t.drainEnd) {
			continue // gone: its slot is free
		}
		if inst := s.instance(t.id); inst == nil || inst.State == "shutting-down" || inst.State == "terminated" {
			continue // AWS deregisters a terminated instance itself
		}
		kept = append(kept, t)
		if t.slotTaken {
			used[t.slot] = true
		}
	}
	tg.targets = kept
	for _, t := range kept {
		if !t.slotTaken {
			for n := 1; n <= hapSlots; n++ {
				if !used[n] {
					t.slot, t.slotTaken, used[n] = n, true, true
					break
				}
			}
		}
		if t.slotTaken && !t.draining {
			want[t.slot] = net.JoinHostPort(t.addr, strconv.Itoa(t.port))
		}
	}
	var haps []*haproxy
	for _, l := range s.listeners {
		if l.tg == tgArn && l.hap != nil {
			haps = append(haps, l.hap)
		}
	}
	s.mu.Unlock()
	for _, h := range haps {
		for n := 1; n <= hapSlots; n++ {
			w := want[n]
			if h.applied[n] == w {
				continue
			}
			srv := "tg/t" + strconv.Itoa(n)
			var line string
			if w == "" {
				line = "set server " + srv + " state maint"
			} else {
				host, port, _ := net.SplitHostPort(w)
				line = fmt.Sprintf("set server %s state maint; set server %s addr %s port %s; set server %s state ready; set server %s health down", srv, srv, host, port, srv, srv)
			}
			if _, err := h.run(line); err != nil {
				s.t.Errorf("ec2test: haproxy %s: %s: %v", h.front, line, err)
				continue
			}
			h.applied[n] = w
		}
	}
}

// haproxyStatus is what HAProxy says of tgArn's slots (nil without).
func (s *Server) haproxyStatus(tgArn string) map[int]string {
	s.mu.Lock()
	var h *haproxy
	for _, l := range s.listeners {
		if l.tg == tgArn && l.hap != nil {
			h = l.hap
			break
		}
	}
	s.mu.Unlock()
	if h == nil {
		return nil
	}
	st, err := h.status()
	if err != nil {
		return nil
	}
	return st
}

// BalancerStatus is what the HAProxy of load balancer name says of each
// registered or draining target of its group, by instance ID: UP, DOWN,
// "DOWN 1/2", MAINT... Read from its stats socket, for tests that watch
// the rotation.
func (s *Server) BalancerStatus(name string) (map[string]string, error) {
	s.mu.Lock()
	var tgArn string
	var h *haproxy
	for _, lb := range s.lbs {
		if lb.name != name {
			continue
		}
		for _, l := range s.listeners {
			if l.lb == lb.arn && l.hap != nil && h == nil { // the first: HTTP
				tgArn, h = l.tg, l.hap
			}
		}
	}
	s.mu.Unlock()
	if h == nil {
		return nil, fmt.Errorf("load balancer %s has no HAProxy", name)
	}
	st, err := h.status()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	if tg := s.tgByArn(tgArn); tg != nil {
		for _, t := range tg.targets {
			if t.slotTaken {
				out[t.id] = st[t.slot]
			}
		}
	}
	return out, nil
}
