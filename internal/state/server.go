package state

import (
	"fmt"
	"time"
)

// Server is sys/server.json: server-wide settings and state.
type Server struct {
	Retention Retention `json:"retention,omitzero"`
	// Backoff is for server-wide steps (none fail this way yet).
	Backoff *Backoff `json:"backoff,omitempty"`
	// Proxy is how the front door serves the app environments here.
	Proxy *Proxy `json:"proxy,omitempty"`
	Extra Extra  `json:"-"`
}

// Proxy is server.json's "proxy": the front door on ports 80 and 443
// (docs/routing.md).
type Proxy struct {
	// BaseDomain gives each app environment a default name,
	// APP-ENV.BASE_DOMAIN (point a wildcard DNS record at the server).
	BaseDomain string `json:"base_domain,omitempty"`
	// DefaultApp ("APP/ENV") is served on the server's bare address; when
	// empty, the only app environment with a web process is.
	DefaultApp string `json:"default_app,omitempty"`
	// ACME is where certificates come from; empty: Let's Encrypt.
	ACME ACME `json:"acme,omitzero"`
	// LBWait is how long a load balancer in front takes to see a change
	// of this server's health path (its check interval times the checks
	// it needs, "6s"): a switch waits this long after the path says
	// "draining", and a deploy again after it says "ok", before it is
	// reported live. Empty: no wait (docs/routing.md).
	LBWait string `json:"lb_wait,omitempty"`
	Extra  Extra  `json:"-"`
}

// LBWaitDuration is LBWait read, or why it cannot be (naming server.json,
// the value and the fix).
func (p *Proxy) LBWaitDuration() (time.Duration, error) {
	if p == nil || p.LBWait == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(p.LBWait)
	if err != nil || d < 0 || d > 10*time.Minute {
		return 0, fmt.Errorf("server.json: proxy.lb_wait %q: give a duration from 0s to 10m, such as \"6s\" (the load balancer's check interval times the checks it needs)", p.LBWait)
	}
	return d, nil
}

// ACME is the certificate authority the front door asks for certificates.
type ACME struct {
	// CA is the ACME directory URL (default Let's Encrypt's production one).
	CA string `json:"ca,omitempty"`
	// CARoot is a PEM file with the root that the CA's own HTTPS is signed
	// by, for a private CA (Pebble in the tests).
	CARoot string `json:"ca_root,omitempty"`
	// Email is given to the CA for expiry notices.
	Email string `json:"email,omitempty"`
	Extra Extra  `json:"-"`
}

// Retention says which old releases cleanup may remove. A release is never
// removed while it is live, the last good one before it, pending, or younger
// than MinAgeDays; beyond that failed releases go first, then the oldest,
// until at most KeepReleases remain.
//
// Failed releases (and ones whose deployment was replaced before it went
// live) are capped besides, whatever their age, so that a run of broken
// pushes cannot fill the disk: beyond the newest KeepFailed, or beyond
// FailedMaxMB of them together, the oldest go.
type Retention struct {
	KeepReleases int   `json:"keep_releases,omitempty"`
	MinAgeDays   int   `json:"min_age_days,omitempty"`
	KeepFailed   int   `json:"keep_failed,omitempty"`
	FailedMaxMB  int   `json:"failed_max_mb,omitempty"`
	Extra        Extra `json:"-"`
}

// Defaults for Retention's zero values.
const (
	DefaultKeepReleases = 5
	DefaultMinAgeDays   = 7
	DefaultKeepFailed   = 3
	DefaultFailedMaxMB  = 2048
)

// KeepFailedReleases returns how many failed releases may stay whatever
// their age.
func (r Retention) KeepFailedReleases() int {
	if r.KeepFailed > 0 {
		return r.KeepFailed
	}
	return DefaultKeepFailed
}

// FailedMaxBytes returns how many bytes failed releases may hold together
// (bundle and extracted content) whatever their age.
func (r Retention) FailedMaxBytes() int64 {
	if r.FailedMaxMB > 0 {
		return int64(r.FailedMaxMB) << 20
	}
	return DefaultFailedMaxMB << 20
}

// Keep returns the number of releases to keep.
func (r Retention) Keep() int {
	if r.KeepReleases > 0 {
		return r.KeepReleases
	}
	return DefaultKeepReleases
}

// MinAge returns how old a release must be before cleanup may remove it.
func (r Retention) MinAge() time.Duration {
	days := r.MinAgeDays
	if days <= 0 {
		days = DefaultMinAgeDays
	}
	return time.Duration(days) * 24 * time.Hour
}

func (s *Server) UnmarshalJSON(b []byte) error {
	type plain Server
	x, err := decodeKeep(b, (*plain)(s))
	s.Extra = x
	return err
}
func (s Server) MarshalJSON() ([]byte, error) {
	type plain Server
	return encodeKeep(plain(s), s.Extra)
}

func (r *Retention) UnmarshalJSON(b []byte) error {
	type plain Retention
	x, err := decodeKeep(b, (*plain)(r))
	r.Extra = x
	return err
}
func (r Retention) MarshalJSON() ([]byte, error) {
	type plain Retention
	return encodeKeep(plain(r), r.Extra)
}

func (p *Proxy) UnmarshalJSON(b []byte) error {
	type plain Proxy
	x, err := decodeKeep(b, (*plain)(p))
	p.Extra = x
	return err
}
func (p Proxy) MarshalJSON() ([]byte, error) {
	type plain Proxy
	return encodeKeep(plain(p), p.Extra)
}

func (a *ACME) UnmarshalJSON(b []byte) error {
	type plain ACME
	x, err := decodeKeep(b, (*plain)(a))
	a.Extra = x
	return err
}
func (a ACME) MarshalJSON() ([]byte, error) {
	type plain ACME
	return encodeKeep(plain(a), a.Extra)
}
