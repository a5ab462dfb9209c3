package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Certificate states (Cert.State).
const (
	// CertIssued: the proxy's storage holds a certificate for the host
	// that has not expired. Caddy renews it by itself.
	CertIssued = "issued"
	// CertPending: no certificate yet, and no failure logged since the
	// last success: the proxy is obtaining one.
	CertPending = "pending"
	// CertFailing: the proxy's last attempt failed; Error says why (the
	// CA's reason when it gave one). Caddy retries with a backoff.
	CertFailing = "failing"
	// CertExpired: the certificate in storage has expired.
	CertExpired = "expired"
)

// Cert is the state of one host name's certificate.
type Cert struct {
	Host  string `json:"host"`
	State string `json:"state"`
	// Issuer is the certificate's issuer (its common name), Expires its
	// NotAfter, when one is in storage.
	Issuer  string    `json:"issuer,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
	// Error is the last failure to obtain or renew the certificate, when
	// no success followed it; FailedAt is when it was logged.
	Error    string    `json:"error,omitempty"`
	FailedAt time.Time `json:"failed_at,omitzero"`
}

// String is one line for people: "issued by X, expires 2027-03-04" or
// "failing: REASON".
func (c Cert) String() string {
	var s string
	switch c.State {
	case CertIssued, CertExpired:
		s = fmt.Sprintf("%s by %s, expires %s", c.State, c.Issuer, c.Expires.UTC().Format(time.DateOnly))
		if c.State == CertExpired {
			s = fmt.Sprintf("expired on %s (issued by %s)", c.Expires.UTC().Format(time.DateOnly), c.Issuer)
		}
		if c.Error != "" {
			s += fmt.Sprintf("; renewal failing since %s: %s", c.FailedAt.UTC().Format(time.RFC3339), c.Error)
		}
	case CertFailing:
		s = fmt.Sprintf("failing (%s): %s", c.FailedAt.UTC().Format(time.RFC3339), c.Error)
	default:
		s = c.State
	}
	return s
}

// Certificates returns the state of each host's certificate: what the
// proxy's file storage (StorageDir) holds, and what the proxy's log says
// of its attempts to obtain one. log is the proxy's JSON log lines, oldest
// first (TLSLog reads them from the journal); lines that are not Caddy's
// tls log lines are skipped.
func Certificates(storage string, hosts []string, log io.Reader) []Cert {
	events := tlsEvents(log)
	now := time.Now()
	certs := make([]Cert, 0, len(hosts))
	for _, h := range hosts {
		c := Cert{Host: h, State: CertPending}
		if crt := newestCert(storage, h); crt != nil {
			c.State, c.Issuer, c.Expires = CertIssued, issuerName(crt), crt.NotAfter
			if now.After(crt.NotAfter) {
				c.State = CertExpired
			}
		}
		if e, ok := events[h]; ok && e.failed.After(e.obtained) {
			c.Error, c.FailedAt = e.reason(), e.failed
			if c.State == CertPending {
				c.State = CertFailing
			}
		}
		certs = append(certs, c)
	}
	return certs
}

// newestCert is the certificate for host in Caddy's file storage
// (certificates/ISSUER/HOST/HOST.crt) that expires last: a server that
// changed CA has one per CA.
func newestCert(storage, host string) *x509.Certificate {
	if host == "" || strings.ContainsAny(host, `/\*?[`) || strings.HasPrefix(host, ".") {
		return nil
	}
	files, _ := filepath.Glob(filepath.Join(storage, "certificates", "*", host, host+".crt"))
	var best *x509.Certificate
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		blk, _ := pem.Decode(b) // the leaf comes first, then its chain
		if blk == nil || blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			continue
		}
		if best == nil || c.NotAfter.After(best.NotAfter) {
			best = c
		}
	}
	return best
}

func issuerName(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	if len(c.Issuer.Organization) > 0 {
		return c.Issuer.Organization[0]
	}
	return c.Issuer.String()
}

// hostEvents is what the log says of one host's certificate.
type hostEvents struct {
	obtained, failed time.Time
	err              string // the failed attempt's error
	problem          string // the CA's problem document, when it sent one
}

func (e hostEvents) reason() string {
	if e.problem != "" && !strings.Contains(e.err, e.problem) {
		return e.err + " (the CA said: " + e.problem + ")"
	}
	return e.err
}

// logLine is the part of Caddy's JSON log lines we read.
type logLine struct {
	Level       string  `json:"level"`
	TS          float64 `json:"ts"`
	Logger      string  `json:"logger"`
	Msg         string  `json:"msg"`
	Identifier  string  `json:"identifier"`
	Error       string  `json:"error"`
	ProblemType string  `json:"problem_type"`
}

// maxReason caps a reason kept from the log.
const maxReason = 1000

// tlsLoggers are the loggers of Caddy 2.6.2 that speak of certificates:
// "tls.obtain" and "tls.renew" (certmagic) log "certificate obtained
// successfully" (or "renewed") and "could not get certificate from
// issuer" with the error; its ACME client, "http.acme_client", logs the
// CA's answer to each challenge ("challenge failed", with problem_type
// and the CA's detail as error).
var tlsLoggers = [][]byte{[]byte(`"logger":"tls.`), []byte(`"logger":"http.acme_client"`)}

// tlsEvents reads the log's certificate lines: per host, the last
// success, the last failure and its reason.
func tlsEvents(r io.Reader) map[string]*hostEvents {
	m := map[string]*hostEvents{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		b := sc.Bytes()
		if i := bytes.IndexByte(b, '{'); i > 0 {
			b = b[i:] // a prefix (journalctl -o short)
		}
		if !bytes.Contains(b, tlsLoggers[0]) && !bytes.Contains(b, tlsLoggers[1]) {
			continue
		}
		var l logLine
		if json.Unmarshal(b, &l) != nil || l.Identifier == "" {
			continue
		}
		e := m[l.Identifier]
		if e == nil {
			e = &hostEvents{}
			m[l.Identifier] = e
		}
		ts := time.Unix(0, int64(l.TS*float64(time.Second)))
		switch {
		case strings.HasPrefix(l.Msg, "certificate obtained successfully"), strings.HasPrefix(l.Msg, "certificate renewed successfully"):
			e.obtained, e.problem = ts, ""
		case l.Msg == "could not get certificate from issuer" && l.Error != "":
			e.failed, e.err = ts, truncate(l.Error)
		case l.Msg == "challenge failed" && l.Error != "":
			p := l.Error
			if l.ProblemType != "" {
				p = l.ProblemType + " - " + p
			}
			e.problem = truncate(p)
		}
	}
	return m
}

func truncate(s string) string {
	if len(s) > maxReason {
		return s[:maxReason] + "..."
	}
	return s
}

// TLSLog returns the proxy's tls log lines from its journal: at most the
// last 2000 of the last 90 days (Caddy retries a failing certificate for
// 30 days, and renews 30 days before expiry).
func TLSLog(ctx context.Context) (io.Reader, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	args := []string{"-u", Unit, "-o", "cat", "--no-pager", "--since", "-90d", "-n", "2000"}
	out, err := exec.CommandContext(ctx, "journalctl", append(args, "-g", `"logger":"(tls\.|http\.acme_client)`)...).Output()
	if err != nil {
		// No match is exit status 1 too; a journalctl without pattern
		// support fails differently: read without the pattern.
		if ee, ok := err.(*exec.ExitError); ok && len(bytes.TrimSpace(ee.Stderr)) == 0 {
			return bytes.NewReader(out), nil
		}
		out, err = exec.CommandContext(ctx, "journalctl", args...).Output()
		if err != nil {
			return nil, fmt.Errorf("read the front door's journal (journalctl -u %s): %w", Unit, err)
		}
	}
	return bytes.NewReader(out), nil
}
