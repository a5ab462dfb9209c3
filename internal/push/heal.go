package push

import "context"

// FollowAll makes every server of an environment that deploys through S3
// follow its document (`jeagent follow`; nothing changes on a server that
// already does), then asks each to read it now (`jeagent sync`): a server
// that replaced another (`jepush heal`) fetches the live release at once.
func (c *Client) FollowAll(ctx context.Context) error {
	if c.Global == nil {
		return nil
	}
	err := c.followAll(ctx)
	c.poke(ctx, c.Targets)
	return err
}
