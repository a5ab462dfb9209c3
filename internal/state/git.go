package state

import "time"

// IsCommit reports whether s is a full commit ID: 40 (SHA-1) or 64
// (SHA-256) lowercase hex digits.
func IsCommit(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Git is an app environment deployed from git pushes (`jepush git:setup`):
// the repository and branch it follows, the last push the webhook accepted,
// and the last commit built into a bundle. The webhook's secret and the
// deploy key are not here: they are root-only files in APP/ENV/git/.
type Git struct {
	Repository string     `json:"repository"`
	Branch     string     `json:"branch"`
	Requested  *GitCommit `json:"requested,omitempty"`
	Built      *GitCommit `json:"built,omitempty"`
	Extra      Extra      `json:"-"`
}

// GitCommit is a commit the webhook accepted (Requested) or the agent built
// (Built, with the version ID of its bundle).
type GitCommit struct {
	Commit   string    `json:"commit"`
	Delivery string    `json:"delivery,omitempty"` // the webhook delivery that asked for it
	Date     time.Time `json:"date,omitzero"`
	Version  string    `json:"version,omitempty"`
	Extra    Extra     `json:"-"`
}

// Pending returns the commit to build, if a push asked for one not built
// yet. A push is built when its commit is, or when the build for its
// delivery built another commit: the branch's tip on the git server, which
// a replayed or overtaken delivery gets instead of its own.
func (g *Git) Pending() *GitCommit {
	if g == nil || g.Requested == nil {
		return nil
	}
	if b := g.Built; b != nil && (b.Commit == g.Requested.Commit || b.Delivery != "" && b.Delivery == g.Requested.Delivery) {
		return nil
	}
	return g.Requested
}

func (g *Git) UnmarshalJSON(b []byte) error {
	type plain Git
	x, err := decodeKeep(b, (*plain)(g))
	g.Extra = x
	return err
}
func (g Git) MarshalJSON() ([]byte, error) { type plain Git; return encodeKeep(plain(g), g.Extra) }

func (c *GitCommit) UnmarshalJSON(b []byte) error {
	type plain GitCommit
	x, err := decodeKeep(b, (*plain)(c))
	c.Extra = x
	return err
}
func (c GitCommit) MarshalJSON() ([]byte, error) {
	type plain GitCommit
	return encodeKeep(plain(c), c.Extra)
}
