package mongodb

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/jecloud/jecloud/internal/backup"
	"github.com/jecloud/jecloud/internal/ports"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// admin logs in as the administrator of an instance that is set up.
func admin(ctx context.Context, inst backup.Instance) (*mongo.Client, error) {
	i := newInstance(inst.Dir(), inst.App, inst.Env)
	var err error
	if i.port, err = ports.Lookup(i.dir, "mongodb"); err != nil {
		return nil, err
	}
	pw, err := readPassword(i.adminPasswordFile())
	if err != nil {
		return nil, err
	}
	c, err := login(ctx, i, adminUser, pw)
	if err != nil {
		return nil, fmt.Errorf("MongoDB of %s/%s on port %d: %w (is %s running?)", i.app, i.env, i.port, err, i.unit())
	}
	return c, nil
}

// Dump writes every database of the instance but admin, local and config
// to w in the jecloud-mongodump format (see dump.go).
func (h *Hook) Dump(ctx context.Context, inst backup.Instance, w io.Writer, log io.Writer) error {
	c, err := admin(ctx, inst)
	if err != nil {
		return err
	}
	defer c.Disconnect(context.Background())
	colls, docs, err := dump(ctx, c, w)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "dumped %d collections, %d documents\n", colls, docs)
	return nil
}

// Restore replaces the instance's databases with the dump read from r.
// The data it replaces is first saved to APP/ENV/mongodb.before-restore
// (root-only), so that a restore never loses anything.
func (h *Hook) Restore(ctx context.Context, inst backup.Instance, r io.Reader, log io.Writer) error {
	c, err := admin(ctx, inst)
	if err != nil {
		return err
	}
	defer c.Disconnect(context.Background())
	saved := filepath.Join(inst.Root, inst.App, inst.Env, "mongodb.before-restore")
	if err := safetyDump(ctx, c, saved); err != nil {
		return err
	}
	fmt.Fprintf(log, "saved the data it replaces to %s\n", saved)
	colls, docs, err := restore(ctx, c, r)
	if err != nil {
		return fmt.Errorf("%w (the data from before the restore is in %s)", err, saved)
	}
	fmt.Fprintf(log, "restored %d collections, %d documents\n", colls, docs)
	return nil
}

func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: the instance is not set up (deploy a release that declares mongodb)", err)
	}
	return strings.TrimSpace(string(b)), nil
}
