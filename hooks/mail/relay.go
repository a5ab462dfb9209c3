package mail

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// Config vars that name the provider (APP/ENV/config.env, set with
// `jepush config:set`).
const (
	// RelayURLVar is the provider as a URL:
	// smtp://USER:PASSWORD@HOST:PORT (STARTTLS, port 587 by default) or
	// smtps://USER:PASSWORD@HOST:PORT (TLS from the first byte, port 465),
	// with ?tls=secure (default: the certificate is checked), ?tls=encrypt
	// (the opt-out: TLS without checking) or ?tls=none, and ?ca=PATH for a
	// provider whose certificate comes from a private CA.
	RelayURLVar = "MAIL_RELAY_URL"
	// SendgridVar is a shorthand: an API key of Sendgrid's, which is user
	// "apikey" with the key as password at SendgridHost:587.
	SendgridVar = "SENDGRID_API_KEY"
	// SendgridHost is Sendgrid's SMTP relay.
	SendgridHost = "smtp.sendgrid.net"
)

// TLS policies of the relay's connection to the provider (Postfix's
// smtp_tls_security_level).
const (
	TLSSecure  = "secure"  // TLS required, certificate checked against the system's CAs (or CAFile) and the host name (the default)
	TLSEncrypt = "encrypt" // TLS required, certificate not checked: the explicit opt-out
	// SystemCAFile is the system's CA bundle (Debian's ca-certificates).
	SystemCAFile = "/etc/ssl/certs/ca-certificates.crt"
	TLSNone      = "none" // no TLS: only for a relay on a private network or a test
)

// Relay is where an app environment's mail goes.
type Relay struct {
	Host     string
	Port     int
	User     string // "" for no AUTH
	Password string `json:"-"`
	TLS      string // TLSSecure, TLSEncrypt or TLSNone
	// CAFile is the CA bundle certificates are checked against with
	// TLSSecure ("": SystemCAFile), for providers with a private CA.
	CAFile string `json:",omitempty"`
	// Wrapper: TLS from the first byte (smtps, port 465) rather than STARTTLS.
	Wrapper bool
}

// NextHop is the relay in Postfix's notation, [HOST]:PORT (no MX lookup).
func (r Relay) NextHop() string {
	return "[" + r.Host + "]:" + strconv.Itoa(r.Port)
}

// String names the relay without its password.
func (r Relay) String() string {
	scheme := "smtp"
	if r.Wrapper {
		scheme = "smtps"
	}
	user := ""
	if r.User != "" {
		user = r.User + "@"
	}
	ca := ""
	if r.CAFile != "" {
		ca = ", ca " + r.CAFile
	}
	return fmt.Sprintf("%s://%s%s (tls %s%s)", scheme, user, net.JoinHostPort(r.Host, strconv.Itoa(r.Port)), r.TLS, ca)
}

// ParseRelay reads the provider from an app environment's config vars;
// path (config.env) is named in errors. Passwords never appear in them.
func ParseRelay(vars map[string]string, path string) (Relay, error) {
	raw, key := vars[RelayURLVar], vars[SendgridVar]
	switch {
	case raw != "" && key != "":
		return Relay{}, fmt.Errorf("%s: both %s and %s are set: keep one (jepush config:unset ENV %s)", path, RelayURLVar, SendgridVar, SendgridVar)
	case key != "":
		if strings.ContainsAny(key, " \t\r\n") {
			return Relay{}, fmt.Errorf("%s: %s has white space in it: set the key alone", path, SendgridVar)
		}
		return Relay{Host: SendgridHost, Port: 587, User: "apikey", Password: key, TLS: TLSSecure}, nil
	case raw == "":
		return Relay{}, fmt.Errorf("%s: no mail provider: set %s=smtp://USER:PASSWORD@HOST:587 or %s=KEY with `jepush config:set ENV ...`",
			path, RelayURLVar, SendgridVar)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url's error repeats the URL, password and all.
		return Relay{}, fmt.Errorf("%s: %s is not a URL: want smtp://USER:PASSWORD@HOST:PORT (password URL-encoded)", path, RelayURLVar)
	}
	r := Relay{Host: u.Hostname(), TLS: TLSSecure}
	shown := redact(u)
	switch u.Scheme {
	case "smtp", "submission":
		r.Port = 587
	case "smtps":
		r.Port, r.Wrapper = 465, true
	default:
		return Relay{}, fmt.Errorf("%s: %s=%s: scheme %q: use smtp:// (STARTTLS) or smtps:// (TLS from the start)", path, RelayURLVar, shown, u.Scheme)
	}
	if r.Host == "" || strings.ContainsAny(r.Host, "[]: \t") && net.ParseIP(r.Host) == nil {
		return Relay{}, fmt.Errorf("%s: %s=%s: no host name: want smtp://USER:PASSWORD@HOST:PORT", path, RelayURLVar, shown)
	}
	if p := u.Port(); p != "" {
		if r.Port, err = strconv.Atoi(p); err != nil || r.Port < 1 || r.Port > 65535 {
			return Relay{}, fmt.Errorf("%s: %s=%s: port %q: give 1 to 65535", path, RelayURLVar, shown, p)
		}
	}
	if u.User != nil {
		r.User = u.User.Username()
		r.Password, _ = u.User.Password()
		if r.User == "" || r.Password == "" {
			return Relay{}, fmt.Errorf("%s: %s=%s: give both a user and a password, or neither", path, RelayURLVar, shown)
		}
		if strings.ContainsAny(r.User+r.Password, "\r\n") || strings.ContainsAny(r.User, " \t:") {
			return Relay{}, fmt.Errorf("%s: %s=%s: the user may not hold blanks or ':', nor either a line break", path, RelayURLVar, shown)
		}
	}
	if u.Path != "" && u.Path != "/" {
		return Relay{}, fmt.Errorf("%s: %s=%s: unexpected path %q: want smtp://USER:PASSWORD@HOST:PORT", path, RelayURLVar, shown, u.Path)
	}
	for k, v := range u.Query() {
		switch t := v[len(v)-1]; k {
		case "tls":
			switch t {
			case TLSEncrypt, TLSSecure:
				r.TLS = t
			case TLSNone:
				if r.Wrapper {
					return Relay{}, fmt.Errorf("%s: %s=%s: smtps is TLS: tls=none goes with smtp://", path, RelayURLVar, shown)
				}
				r.TLS = t
			default:
				return Relay{}, fmt.Errorf("%s: %s=%s: tls=%q: use secure (default: check the certificate), encrypt (TLS without checking it) or none", path, RelayURLVar, shown, t)
			}
		case "ca":
			if !filepath.IsAbs(t) || filepath.Clean(t) != t || strings.ContainsAny(t, " \t\r\n,=") {
				return Relay{}, fmt.Errorf("%s: %s=%s: ca=%q: give the absolute path of a PEM file on the server (no blanks, commas or '=')", path, RelayURLVar, shown, t)
			}
			r.CAFile = t
		default:
			return Relay{}, fmt.Errorf("%s: %s=%s: unknown parameter %q: only tls=secure|encrypt|none and ca=PATH", path, RelayURLVar, shown, k)
		}
	}
	if r.CAFile != "" && r.TLS != TLSSecure {
		return Relay{}, fmt.Errorf("%s: %s=%s: ca= checks the certificate: it goes with tls=secure (the default), not tls=%s", path, RelayURLVar, shown, r.TLS)
	}
	return r, nil
}

// redact is the URL with its password replaced by xxxxx.
func redact(u *url.URL) string {
	c := *u
	if _, ok := c.User.Password(); ok {
		c.User = url.UserPassword(c.User.Username(), "xxxxx")
	}
	return c.String()
}
