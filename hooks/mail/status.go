package mail

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Status is an app environment's relay in `jeagent status`.
type Status struct {
	Listen string `json:"listen"`
	Relay  string `json:"relay"`
	// Queued counts the environment's messages in Postfix's queue, and
	// Deferred those of them that a delivery attempt failed for.
	Queued   int `json:"queued"`
	Deferred int `json:"deferred"`
	// Oldest is when the oldest queued message arrived.
	Oldest *time.Time `json:"oldest,omitempty"`
	// LastSent is the last delivery the provider accepted.
	LastSent *time.Time `json:"last_sent,omitempty"`
	// LastFailure is the last delivery attempt that failed (deferred:
	// tried again later; bounced: given up), when it is newer than LastSent
	// or a message is still deferred.
	LastFailure *Failure `json:"last_failure,omitempty"`
	// Error says what could not be read.
	Error string `json:"error,omitempty"`
}

// Failure is one failed delivery attempt.
type Failure struct {
	Date   time.Time `json:"date"`
	Status string    `json:"status"` // deferred, bounced
	Reason string    `json:"reason"`
}

// Queue is a snapshot of Postfix's queue: each message with the transport
// its content_filter names.
type Queue struct {
	Messages []Message
	Err      error
}

// Message is one queued message.
type Message struct {
	ID        string
	Queue     string // active, deferred, hold, incoming, maildrop
	Arrival   time.Time
	Transport string // "" when it came in another way than a JeCloud listener
	Filter    string // its whole content_filter, TRANSPORT:[HOST]:PORT
	Reason    string // why its last delivery failed, "" if none did
	// Sender and Recipients are its envelope (the recipients not yet
	// delivered to).
	Sender     string
	Recipients []string
}

// StatusReader reads the queue once for every environment's status.
type StatusReader struct {
	// ConfDir is Hook.ConfDir.
	ConfDir string
	// Run runs a command and returns its standard output.
	Run   func(ctx context.Context, name string, args ...string) ([]byte, error)
	queue *Queue
}

// NewStatusReader reads the real Postfix.
func NewStatusReader() *StatusReader {
	return &StatusReader{ConfDir: New().ConfDir, Run: func(ctx context.Context, name string, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, name, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return out, nil
	}}
}

// Status returns the relay of app/env, or nil when it has none.
func (r *StatusReader) Status(ctx context.Context, app, env string) *Status {
	e := envOf(app, env, r.ConfDir)
	b, err := os.ReadFile(e.infoPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	s := &Status{}
	var i info
	if err == nil {
		err = json.Unmarshal(b, &i)
	}
	if err != nil {
		s.Error = fmt.Sprintf("%s: %v: the next deploy rewrites it", e.infoPath(), err)
		return s
	}
	s.Listen, s.Relay = i.Listen, i.Relay
	if r.queue == nil {
		r.queue = r.readQueue(ctx)
	}
	var errs []string
	if r.queue.Err != nil {
		errs = append(errs, r.queue.Err.Error())
	}
	var queuedReason *Failure
	legacy, _ := e.ownsLegacy() // mail still queued for its transport of before issue #17
	for _, m := range r.queue.Messages {
		if m.Transport != e.Name() && (!legacy || m.Transport != e.legacyName()) {
			continue
		}
		s.Queued++
		if s.Oldest == nil || m.Arrival.Before(*s.Oldest) {
			t := m.Arrival
			s.Oldest = &t
		}
		if m.Queue == "deferred" {
			s.Deferred++
			if m.Reason != "" && queuedReason == nil {
				queuedReason = &Failure{Date: m.Arrival, Status: "deferred", Reason: m.Reason}
			}
		}
	}
	out, err := r.Run(ctx, "journalctl", "--no-pager", "-o", "json", "-n", "300", "-t", e.SyslogName()+"/smtp", "-t", e.SyslogName()+"/error")
	if err != nil {
		errs = append(errs, err.Error())
	}
	sent, failed := lastDeliveries(out)
	s.LastSent = sent
	if failed != nil && (sent == nil || failed.Date.After(*sent) || s.Deferred > 0) {
		s.LastFailure = failed
	} else if failed == nil && queuedReason != nil {
		s.LastFailure = queuedReason // the journal has forgotten it
	}
	s.Error = strings.Join(errs, "; ")
	return s
}

func envOf(app, envName, dir string) env { return env{App: app, Env: envName, Dir: dir} }

// readQueue lists the queue (postqueue -j) and finds each message's
// content_filter in its envelope (postcat -e).
func (r *StatusReader) readQueue(ctx context.Context) *Queue {
	q := &Queue{}
	out, err := r.Run(ctx, "postqueue", "-j")
	if err != nil {
		q.Err = err
		return q
	}
	q.Messages, err = parsePostqueue(out)
	if err != nil {
		q.Err = err
		return q
	}
	if len(q.Messages) == 0 {
		return q
	}
	const most = 500 // a queue bigger than that is shown by its first messages
	ids := []string{"-e", "-q"}
	for i, m := range q.Messages {
		if i == most {
			break
		}
		ids = append(ids, m.ID)
	}
	out, err = r.Run(ctx, "postcat", ids...)
	filters := parsePostcat(out)
	if err != nil {
		// A message delivered since postqueue listed it makes postcat
		// stop there: ask for the others one by one.
		for _, id := range ids[2:] {
			if _, ok := filters[id]; ok {
				continue
			}
			if out, err := r.Run(ctx, "postcat", "-e", "-q", id); err == nil {
				maps.Copy(filters, parsePostcat(out))
			}
		}
	}
	for i := range q.Messages {
		if f, ok := filters[q.Messages[i].ID]; ok {
			q.Messages[i].Filter = f
			q.Messages[i].Transport, _, _ = strings.Cut(f, ":")
		}
	}
	return q
}

// parsePostqueue reads `postqueue -j`: one JSON object per message.
func parsePostqueue(out []byte) ([]Message, error) {
	var msgs []Message
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var m struct {
			Queue      string `json:"queue_name"`
			ID         string `json:"queue_id"`
			Arrival    int64  `json:"arrival_time"`
			Sender     string `json:"sender"`
			Recipients []struct {
				Address string `json:"address"`
				Reason  string `json:"delay_reason"`
			} `json:"recipients"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("postqueue -j: %w in %q", err, sc.Text())
		}
		msg := Message{ID: m.ID, Queue: m.Queue, Arrival: time.Unix(m.Arrival, 0).UTC(), Sender: m.Sender}
		for _, rc := range m.Recipients {
			msg.Recipients = append(msg.Recipients, rc.Address)
			if rc.Reason != "" {
				msg.Reason = rc.Reason
			}
		}
		msgs = append(msgs, msg)
	}
	return msgs, sc.Err()
}

// parsePostcat reads `postcat -e -q ID...`: the content_filter of each message.
func parsePostcat(out []byte) map[string]string {
	m := map[string]string{}
	id := ""
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "*** ENVELOPE RECORDS "); ok {
			id = strings.TrimSuffix(strings.TrimSpace(rest), " ***")
			if i := strings.LastIndexByte(id, '/'); i >= 0 {
				id = id[i+1:]
			}
			continue
		}
		if f, ok := strings.CutPrefix(line, "content_filter: "); ok && id != "" {
			m[id] = strings.TrimSpace(f)
		}
	}
	return m
}

var deliveryRE = regexp.MustCompile(`status=(sent|deferred|bounced|expired)(?: \((.*)\))?$`)

// lastDeliveries reads the environment's smtp client's journal lines
// (journalctl -o json, oldest first) for its last accepted delivery and
// its last failed one.
func lastDeliveries(out []byte) (sent *time.Time, failed *Failure) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var j struct {
			Message any    `json:"MESSAGE"`
			Time    string `json:"__REALTIME_TIMESTAMP"`
		}
		if json.Unmarshal(sc.Bytes(), &j) != nil {
			continue
		}
		msg, ok := j.Message.(string)
		if !ok {
			continue
		}
		m := deliveryRE.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		us, _ := strconv.ParseInt(j.Time, 10, 64)
		t := time.UnixMicro(us).UTC()
		if m[1] == "sent" {
			sent = &t
		} else {
			failed = &Failure{Date: t, Status: m[1], Reason: m[2]}
		}
	}
	return sent, failed
}
