package proxy

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// HAProxy drives the front door's data path through its master CLI (HAProxy
// 2.6 in master-worker mode, `haproxy -Ws -S SOCKET -f FILE`).
//
// What HAProxy 2.6's master CLI does, as verified against Debian's 2.6.12:
// it answers one command a connection once the client has shut its write
// side (else it waits for more); `show proc` lists the master (its reload
// count and "[failed: N]", the failed reloads since the last good one),
// the current worker under "# workers" and the workers still finishing
// their requests after a reload under "# old workers"; `reload` re-executes
// the master and closes the connection without an answer, and the master
// re-executes itself again once the new worker is forked (to free the
// configuration's memory): its socket refuses connections for 60-80 ms,
// cuts one, refuses for 35-45 ms more, then the new master answers with
// the new worker listed, so cli tries again; `@!PID CMD` sends CMD to
// worker PID's own CLI, old ones included ("@1" is the current worker
// only). A reload that cannot load the file keeps the current worker, adds
// one to "failed", and says why only in the master's log (2.6 has no
// `show startup-logs` on the master CLI). An old worker closes its idle
// keep-alive client connections at once and answers the requests in
// flight with "Connection: close", then exits.
type HAProxy struct {
	Bin    string // haproxy binary; "" is /usr/sbin/haproxy
	Master string // the master CLI's Unix socket
}

var (
	// ErrHAProxyNotRunning is returned when no master answers on the socket.
	ErrHAProxyNotRunning = errors.New("no HAProxy master listens on its CLI socket")
	// ErrHAProxyRefused is wrapped by the errors of a configuration HAProxy
	// refuses; HAProxy's reason follows it.
	ErrHAProxyRefused = errors.New("HAProxy refused the configuration")
)

func (h *HAProxy) bin() string {
	if h.Bin == "" {
		return "/usr/sbin/haproxy"
	}
	return h.Bin
}

// Check has HAProxy check file (`haproxy -c -f file`; -q would silence the
// reason too). A refusal wraps ErrHAProxyRefused and carries HAProxy's
// [ALERT] lines, each naming the file and line at fault.
func (h *HAProxy) Check(ctx context.Context, file string) error {
	return h.check(ctx, []string{file})
}

func (h *HAProxy) check(ctx context.Context, files []string) error {
	args := []string{"-c"}
	for _, f := range files {
		args = append(args, "-f", f)
	}
	out, err := exec.CommandContext(ctx, h.bin(), args...).CombinedOutput()
	var exit *exec.ExitError
	if err == nil {
		return nil
	}
	if !errors.As(err, &exit) || ctx.Err() != nil {
		return fmt.Errorf("check %s with %s: %w", strings.Join(files, ", "), h.bin(), err)
	}
	return fmt.Errorf("%w: %s", ErrHAProxyRefused, alerts(out))
}

// alerts is the reason in haproxy -c's output: its [ALERT] lines without
// their prefix and the two that only say there were errors, or the whole
// output when it has none (exit 2, "will not start (no listener)").
func alerts(out []byte) string {
	var reasons []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "[ALERT]") {
			continue
		}
		// "[ALERT]    (1234) : config : parsing [f.cfg:15] : unknown keyword ..."
		_, msg, _ := strings.Cut(line, ") : ")
		msg = strings.TrimPrefix(strings.TrimSpace(msg), "config : ")
		if msg == "" || strings.HasPrefix(msg, "Error(s) found in configuration file") || strings.HasPrefix(msg, "Fatal errors found in configuration") {
			continue
		}
		reasons = append(reasons, msg)
	}
	if len(reasons) == 0 {
		return strings.Join(strings.Fields(string(out)), " ")
	}
	return strings.Join(reasons, "; ")
}

// Reload has the master re-read its configuration and returns once a new
// worker runs it. If the master could not load it (it keeps the current
// worker), the error wraps ErrHAProxyRefused with `haproxy -c`'s reason
// for the files the master reads (from its command line in /proc).
func (h *HAProxy) Reload(ctx context.Context) error {
	before, err := h.procs(ctx)
	if err != nil {
		return err
	}
	// The master closes the connection unanswered, or cuts it: what
	// follows tells.
	if _, err := h.cliOnce(ctx, "reload"); errors.Is(err, ErrHAProxyNotRunning) || ctx.Err() != nil {
		return fmt.Errorf("reload HAProxy: %w", err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("reload HAProxy: no new worker yet: %w", ctx.Err())
		case <-tick.C:
		}
		// The new master answers once its worker is forked or its
		// reload failed.
		now, err := h.procs(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("reload HAProxy: %w", err)
			}
			continue
		}
		if now.reloads <= before.reloads {
			continue
		}
		if w := now.newWorker(before); w != 0 {
			// Its own CLI answers once it runs its event loop.
			out, err := h.cli(ctx, fmt.Sprintf("@!%d show info", w))
			if err != nil || !strings.Contains(out, "Pid: "+strconv.Itoa(w)) {
				return fmt.Errorf("reload HAProxy: the new worker %d does not answer: %v %s", w, err, strings.TrimSpace(out))
			}
			return nil
		}
		if now.failed > 0 {
			return h.failed(ctx, now.master)
		}
	}
}

// failed says why the master could not load its configuration.
func (h *HAProxy) failed(ctx context.Context, master int) error {
	files, dir := masterFiles(master)
	if len(files) > 0 {
		for i, f := range files {
			if !filepath.IsAbs(f) {
				files[i] = filepath.Join(dir, f)
			}
		}
		if err := h.check(ctx, files); err != nil {
			return fmt.Errorf("HAProxy's master could not reload and keeps the running configuration: %w", err)
		}
	}
	return fmt.Errorf("HAProxy's master could not reload %s and keeps the running configuration, though haproxy -c finds no fault; its log says why (`journalctl -u jecloud-haproxy`): %w", strings.Join(files, ", "), ErrHAProxyRefused)
}

// masterFiles is the files the master reads (its -f arguments) and its
// working directory, from /proc.
func masterFiles(pid int) (files []string, dir string) {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, ""
	}
	dir, _ = os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-f" {
			files = append(files, args[i+1])
		}
	}
	return files, dir
}

// InFlight returns, per server address ("127.0.0.1:PORT"), the requests
// sent there and not yet answered plus those queued for it, summed over
// the current worker and the old ones still finishing theirs after a
// reload. Every server of every worker has its address in the map.
func (h *HAProxy) InFlight(ctx context.Context) (map[string]int, error) {
	p, err := h.procs(ctx)
	if err != nil {
		return nil, err
	}
	n := map[string]int{}
	for _, w := range append(p.current, p.old...) {
		// -1 4 -1: every proxy, servers only, every server.
		out, err := h.cli(ctx, fmt.Sprintf("@!%d show stat -1 4 -1", w))
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(out, "Can't find the target PID") {
			continue // an old worker that has just finished
		}
		if err := addStat(n, out); err != nil {
			return nil, fmt.Errorf("worker %d's show stat: %w", w, err)
		}
	}
	return n, nil
}

// addStat adds the scur and qcur of each server row of `show stat`'s CSV
// to n[addr].
func addStat(n map[string]int, out string) error {
	out, ok := strings.CutPrefix(out, "# ")
	if !ok {
		return fmt.Errorf("not CSV: %.200q", out)
	}
	r := csv.NewReader(strings.NewReader(out))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return err
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for _, name := range []string{"type", "scur", "qcur", "addr"} {
		if _, ok := col[name]; !ok {
			return fmt.Errorf("no %s column", name)
		}
	}
	for _, row := range rows[1:] {
		field := func(name string) string {
			if i := col[name]; i < len(row) {
				return row[i]
			}
			return ""
		}
		if field("type") != "2" || field("addr") == "" { // 2: a server
			continue
		}
		scur, _ := strconv.Atoi(field("scur"))
		qcur, _ := strconv.Atoi(field("qcur"))
		n[field("addr")] += scur + qcur
	}
	return nil
}

// procs is what the master's `show proc` says.
type procs struct {
	master, reloads, failed int
	current, old            []int // workers' pids
}

// newWorker is a current worker that was not one before, or 0.
func (p procs) newWorker(before procs) int {
	for _, w := range p.current {
		if !contains(before.current, w) && !contains(before.old, w) {
			return w
		}
	}
	return 0
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// procs reads `show proc`:
//
//	#<PID>          <type>          <reloads>       <uptime>        <version>
//	14007           master          1 [failed: 0]   0d00h11m07s     2.6.12-1+deb12u4
//	# workers
//	17081           worker          0               0d00h00m00s     2.6.12-1+deb12u4
//	# old workers
//	14010           worker          1               0d00h11m07s     2.6.12-1+deb12u4
//	# programs
func (h *HAProxy) procs(ctx context.Context) (procs, error) {
	out, err := h.cli(ctx, "show proc")
	if err != nil {
		return procs{}, err
	}
	var p procs
	section := ""
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "#") {
			section = strings.TrimSpace(strings.TrimPrefix(line, "#"))
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			return procs{}, fmt.Errorf("show proc: %q is not a process", line)
		}
		switch {
		case f[1] == "master":
			p.master = pid
			p.reloads, _ = strconv.Atoi(f[2])
			if len(f) > 4 && f[3] == "[failed:" {
				p.failed, _ = strconv.Atoi(strings.TrimSuffix(f[4], "]"))
			}
		case f[1] == "worker" && section == "workers":
			p.current = append(p.current, pid)
		case f[1] == "worker" && section == "old workers":
			p.old = append(p.old, pid)
		}
	}
	if p.master == 0 {
		return procs{}, fmt.Errorf("show proc on %s: no master in %.200q", h.Master, out)
	}
	return p, nil
}

// masterRestart bounds how long cli waits for a master that re-executes
// itself: twice a reload (to load the new file, then to drop it from its
// memory), its socket refusing connections for about 0.1 s each time and
// cutting those it had accepted.
const masterRestart = 5 * time.Second

// errNoAnswer is a master CLI connection closed without a word, errRefused
// a socket nobody listens on: a master re-executing itself, or gone.
var (
	errNoAnswer = errors.New("no answer")
	errRefused  = fmt.Errorf("%w", ErrHAProxyNotRunning)
)

// cli sends one command to the master CLI and returns its answer, trying
// again while the master re-executes itself (not for "reload").
func (h *HAProxy) cli(ctx context.Context, cmd string) (string, error) {
	give := time.Now().Add(masterRestart)
	for {
		out, err := h.cliOnce(ctx, cmd)
		if err == nil || !restarting(err) || time.Now().After(give) {
			return out, err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// restarting is whether err may be a master re-executing itself.
func restarting(err error) bool {
	return errors.Is(err, errRefused) || errors.Is(err, errNoAnswer) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (h *HAProxy) cliOnce(ctx context.Context, cmd string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", h.Master)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "", fmt.Errorf("%w: %s: %w", errRefused, h.Master, err)
	}
	if errors.Is(err, syscall.ENOENT) {
		return "", fmt.Errorf("%w: %s: %w", ErrHAProxyNotRunning, h.Master, err)
	}
	if err != nil {
		return "", err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("%s on %s: %w", cmd, h.Master, err)
	}
	// The master answers once the client is done sending.
	if err := conn.(*net.UnixConn).CloseWrite(); err != nil {
		return "", fmt.Errorf("%s on %s: %w", cmd, h.Master, err)
	}
	var out bytes.Buffer
	if _, err := io.Copy(&out, conn); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return "", fmt.Errorf("%s on %s: %w", cmd, h.Master, err)
	}
	if out.Len() == 0 && cmd != "reload" {
		return "", fmt.Errorf("%s on %s: %w", cmd, h.Master, errNoAnswer)
	}
	return out.String(), nil
}
