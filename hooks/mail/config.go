package mail

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// MainSettings are the main.cf settings the relay needs, those of Debian's
// "Local only" set-up: Postfix listens on loopback only, and mail that
// does not come through an app environment's listener (cron's, bounces)
// is delivered locally or not at all, never straight to the Internet.
var MainSettings = [][2]string{
	{"inet_interfaces", "loopback-only"},
	{"default_transport", "error"},
	{"relay_transport", "error"},
}

// env is one app environment's relay.
type env struct {
	App, Env string
	Port     int // the listener's, on 127.0.0.1
	Relay    Relay
	// Dir is where the relay's files are kept (Hook.ConfDir).
	Dir string
}

// maxName bounds a transport's name: its socket, private/NAME under
// Postfix's queue directory, must fit sun_path's 108 bytes.
const maxName = 64

// Name is the environment's transport in master.cf, and the middle of its
// log lines' tag (postfix/NAME/smtp): "jecloud-APP_ENV", or, when that is
// longer than maxName, "jecloud-" and the first 28 hex digits of the
// SHA-256 of "APP/ENV". APP and ENV cannot contain '_', so the first form
// names one app environment; the second has no '_', so it never equals
// the first, nor a legacyName (which has a '-' after "jecloud-"): two app
// environments never share a transport, password map or status (issue
// #17).
func (e env) Name() string {
	n := "jecloud-" + e.App + "_" + e.Env
	if len(n) <= maxName {
		return n
	}
	sum := sha256.Sum256([]byte(e.App + "/" + e.Env))
	return "jecloud-" + hex.EncodeToString(sum[:])[:28]
}

// legacyName is the transport versions before issue #17 wrote:
// "jecloud-APP-ENV", shared by (a, b-c) and (a-b, c). Its part of
// master.cf is this environment's only if its first line names it
// (ownsLegacy).
func (e env) legacyName() string { return "jecloud-" + e.App + "-" + e.Env }

// legacyPath is a file of the legacy transport: suffix .master.cf, .sasl,
// .sasl.db or .json.
func (e env) legacyPath(suffix string) string { return filepath.Join(e.Dir, e.legacyName()+suffix) }

// legacyOwner is the first line Master wrote, which names the environment.
func (e env) legacyOwner() string { return "# " + e.App + "/" + e.Env + ": " }

// SyslogName is the tag of the environment's log lines (before "/smtpd" or "/smtp").
func (e env) SyslogName() string { return "postfix/" + e.Name() }

func (e env) Listen() string { return "127.0.0.1:" + strconv.Itoa(e.Port) }

// saslPath is the root-only password map (hash: then postmap'd to .db).
func (e env) saslPath() string { return filepath.Join(e.Dir, e.Name()+".sasl") }

// masterPath is the environment's part of master.cf.
func (e env) masterPath() string { return filepath.Join(e.Dir, e.Name()+".master.cf") }

// infoPath is what `jeagent status` shows of the relay (no secret).
func (e env) infoPath() string { return filepath.Join(e.Dir, e.Name()+".json") }

// SASLMap is the password map's content: the next hop and user:password.
func (e env) SASLMap() string {
	if e.Relay.User == "" {
		return ""
	}
	return e.Relay.NextHop() + " " + e.Relay.User + ":" + e.Relay.Password + "\n"
}

// Master is the environment's two master.cf services: an smtpd listening
// on 127.0.0.1:PORT that hands every message, as it is, to the
// environment's own smtp client (content_filter), and that client, which
// logs in to the provider with the environment's credentials.
func (e env) Master() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s/%s: the app sends to smtp://%s, relayed to %s\n", e.App, e.Env, e.Listen(), e.Relay)
	fmt.Fprintf(&b, "%s inet n - n - - smtpd\n", e.Listen())
	o := func(k, v string) { fmt.Fprintf(&b, "  -o %s=%s\n", k, v) }
	o("syslog_name", e.SyslogName())
	o("content_filter", e.Name()+":"+e.Relay.NextHop())
	// Only local clients, for any recipient; no rewriting of the
	// message's addresses (its headers stay as the app wrote them).
	o("mynetworks", "127.0.0.0/8")
	o("smtpd_client_restrictions", "permit_mynetworks,reject")
	o("smtpd_helo_restrictions", "")
	o("smtpd_sender_restrictions", "")
	o("smtpd_relay_restrictions", "permit_mynetworks,reject")
	o("smtpd_recipient_restrictions", "permit_mynetworks,reject")
	// main.cf routes everything else to the error transport, which
	// smtpd would refuse at RCPT: the content_filter routes this mail.
	o("smtpd_reject_unlisted_recipient", "no")
	o("smtpd_tls_security_level", "none")
	o("smtpd_sasl_auth_enable", "no")
	o("receive_override_options", "no_address_mappings")
	o("local_header_rewrite_clients", "")
	fmt.Fprintf(&b, "%s unix - - n - - smtp\n", e.Name())
	o("syslog_name", e.SyslogName())
	if e.Relay.User != "" {
		o("smtp_sasl_auth_enable", "yes")
		o("smtp_sasl_password_maps", "hash:"+e.saslPath())
		// PLAIN and LOGIN are what providers offer; over TLS unless the
		// relay says tls=none.
		o("smtp_sasl_security_options", "noanonymous")
		o("smtp_sasl_tls_security_options", "noanonymous")
	} else {
		o("smtp_sasl_auth_enable", "no")
	}
	o("smtp_tls_security_level", e.Relay.TLS)
	if e.Relay.Wrapper {
		o("smtp_tls_wrappermode", "yes")
	} else {
		o("smtp_tls_wrappermode", "no")
	}
	if e.Relay.TLS == TLSSecure {
		// The certificate must chain to the system's CAs (or the
		// provider's private CA) and name the host: nexthop is the host
		// of MAIL_RELAY_URL (no MX lookup).
		ca := e.Relay.CAFile
		if ca == "" {
			ca = SystemCAFile
		}
		o("smtp_tls_CAfile", ca)
		o("smtp_tls_CApath", "")
		o("smtp_tls_secure_cert_match", "nexthop,dot-nexthop")
	}
	o("smtp_tls_loglevel", "1")
	return b.String()
}

// Block markers of JeCloud's part of master.cf.
const (
	blockBegin = "# BEGIN jecloud mail: written by jeagent's mail hook from " // + ConfDir
	blockEnd   = "# END jecloud mail"
)

// MergeMaster returns master.cf with JeCloud's block replaced by the
// environments' parts (the files NAME.master.cf of dir), or removed when
// there are none. The rest of master.cf is kept as it is.
func MergeMaster(masterCF, dir string, parts map[string]string) string {
	lines := strings.SplitAfter(masterCF, "\n")
	var out strings.Builder
	in := false
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, blockBegin):
			in = true
		case in && strings.HasPrefix(l, blockEnd):
			in = false
		case !in:
			out.WriteString(l)
		}
	}
	s := out.String()
	if len(parts) == 0 {
		return s
	}
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	names := make([]string, 0, len(parts))
	for n := range parts {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(s)
	b.WriteString(blockBegin + dir + " (edits are lost)\n")
	for _, n := range names {
		b.WriteString(parts[n])
	}
	b.WriteString(blockEnd + "\n")
	return b.String()
}

// transportOnly is a legacy part of master.cf without its listener: its
// first line (the owner) and its smtp client, from "NAME unix" on.
func transportOnly(part, name string) (string, bool) {
	first, _, _ := strings.Cut(part, "\n")
	i := strings.Index(part, "\n"+name+" unix ")
	if i < 0 {
		return "", false
	}
	return first + "\n" + part[i+1:], true
}

// readParts reads the environments' parts of master.cf kept in dir.
func readParts(dir string) (map[string]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.master.cf"))
	if err != nil {
		return nil, err
	}
	parts := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		parts[strings.TrimSuffix(filepath.Base(f), ".master.cf")] = string(b)
	}
	return parts, nil
}
