package state

import "time"

// Receipt records that `jeagent receive` checked a bundle as it arrived:
// its tar stream hashed to its ID and every entry passed the limits. The
// roll-forward then takes the size for its disk check from here instead
// of decompressing the bundle once more; extraction hashes it again
// anyway and refuses a bundle that changed since.
type Receipt struct {
	ContentBytes int64     `json:"content_bytes"`
	Entries      int       `json:"entries"`
	Received     time.Time `json:"received"`
}
