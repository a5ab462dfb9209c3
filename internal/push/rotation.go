package push

import (
	"context"
	"errors"
	"fmt"

	"github.com/jecloud/jecloud/internal/placement"
	"github.com/jecloud/jecloud/internal/remote"
)

// Rotation is the load balancer in front of an environment's web servers
// (an EC2 environment's, docs/ec2.md): Out takes a server out of its
// rotation and returns once the server is drained; In puts it back and
// returns once the balancer sees it healthy.
type Rotation interface {
	Out(ctx context.Context, t remote.Target) error
	In(ctx context.Context, t remote.Target) error
}

// pushRotated deploys to t, out of the rotation while it does if t is a
// web server behind c.Rotation: a rolling deploy through the balancer
// takes one server out at a time. A server where id is already live
// (and no --force) is not taken out: its deploy switches nothing. A
// server whose deploy failed is put
// back too (a failed deploy leaves its live release serving); if it
// cannot be, both errors are said.
func (c *Client) pushRotated(ctx context.Context, t remote.Target, b *lazyBundle, id string, o Options) error {
	if c.Rotation == nil || roleOf(t) != placement.Web {
		return c.pushOne(ctx, t, b, id, o)
	}
	if !o.Force && c.liveOn(ctx, t, id) {
		// Nothing switches there: it stays in rotation (In registers it
		// if the balancer is new).
		if err := c.pushOne(ctx, t, b, id, o); err != nil {
			return err
		}
		return c.Rotation.In(ctx, t)
	}
	if err := c.Rotation.Out(ctx, t); err != nil {
		return fmt.Errorf("%w: nothing was deployed on %s", err, t.Name())
	}
	err := c.pushOne(ctx, t, b, id, o)
	if ctx.Err() != nil {
		return err
	}
	if ierr := c.Rotation.In(ctx, t); ierr != nil {
		return errors.Join(err, ierr)
	}
	return err
}

// liveOn reports whether version id is live on t (false if it cannot tell).
func (c *Client) liveOn(ctx context.Context, t remote.Target, id string) bool {
	r, err := c.open(ctx, t)
	if err != nil {
		return false
	}
	defer r.Close()
	has, ai, err := c.has(ctx, r, id)
	return err == nil && has && ai.live == id
}
