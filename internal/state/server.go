package state

import "time"

// Server is sys/server.json: server-wide settings and state.
type Server struct {
	Retention Retention `json:"retention,omitzero"`
	// Backoff is for server-wide steps (none fail this way yet).
	Backoff *Backoff `json:"backoff,omitempty"`
	Extra   Extra    `json:"-"`
}

// Retention says which old releases cleanup may remove. A release is never
// removed while it is live, the last good one before it, pending, or younger
// than MinAgeDays; beyond that failed releases go first, then the oldest,
// until at most KeepReleases remain.
type Retention struct {
	KeepReleases int   `json:"keep_releases,omitempty"`
	MinAgeDays   int   `json:"min_age_days,omitempty"`
	Extra        Extra `json:"-"`
}

// Defaults for Retention's zero values.
const (
	DefaultKeepReleases = 5
	DefaultMinAgeDays   = 7
)

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
