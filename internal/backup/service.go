// Package backup backs up the data services of app environments (Redis,
// MongoDB) to S3 and restores them: streamed, compressed, checksummed,
// with a retention policy, and recorded in app.json. See docs/services.md.
package backup

import (
	"context"
	"io"
	"path/filepath"
)

// Instance names one app environment's service.
type Instance struct{ Root, App, Env, Service string }

// Dir is the app environment's directory, ROOT/APP/ENV.
func (i Instance) Dir() string { return filepath.Join(i.Root, i.App, i.Env) }

// Service is a data service whose instance can be dumped and restored
// (hooks/redis and hooks/mongodb implement it).
type Service interface {
	// Dump writes a consistent snapshot of the instance's data to w, uncompressed.
	Dump(ctx context.Context, inst Instance, w io.Writer, log io.Writer) error
	// Restore replaces the instance's data with the (already verified,
	// uncompressed) snapshot read from r and leaves the service running.
	Restore(ctx context.Context, inst Instance, r io.Reader, log io.Writer) error
}
