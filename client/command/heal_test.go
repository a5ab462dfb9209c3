package command

import (
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/bootstrap"
	"github.com/jecloud/jecloud/internal/globalstate"
)

// TestHealPrint: what `jepush heal` says for each outcome.
func TestHealPrint(t *testing.T) {
	sick := []bootstrap.Sick{{Server: "shop-prod-1", InstanceID: "i-0a", Reason: "instance i-0a is stopped"}}
	for _, tc := range []struct {
		name     string
		res      healResult
		s3Deploy bool
		want     string
	}{
		{"healthy", healResult{App: "shop", Env: "prod", Seconds: 0.42}, false,
			"shop/prod: every server is healthy (0.4 s)\n"},
		{"dry run", healResult{App: "shop", Env: "prod", Sick: sick, DryRun: true}, false,
			"shop-prod-1 (i-0a) needs replacing: instance i-0a is stopped\nrun `jepush heal prod` to replace them\n"},
		{"healed, SSH deploys", healResult{App: "shop", Env: "prod", Sick: sick, Seconds: 27.5,
			Servers: []globalstate.Server{{Name: "shop-prod-1", InstanceID: "i-0b", Host: "203.0.113.9"}, {Name: "shop-prod-2", InstanceID: "i-0c"}}}, false,
			"shop-prod-1 (i-0a) replaced: instance i-0a is stopped\nshop-prod-1: now i-0b at 203.0.113.9\nshop/prod healed in 27.5 s\n" +
				"the replacement runs no release yet: `jepush DIR prod` deploys the live one to it (deploy = \"s3\" servers fetch it themselves)\n"},
		{"healed, S3 deploys, elastic IP", healResult{App: "shop", Env: "prod", Sick: sick, Seconds: 30, ElasticIP: "203.0.113.20",
			Servers: []globalstate.Server{{Name: "shop-prod-1", InstanceID: "i-0b", Host: "203.0.113.20"}}}, true,
			"shop-prod-1 (i-0a) replaced: instance i-0a is stopped\nshop-prod-1: now i-0b at 203.0.113.20\nelastic IP 203.0.113.20 is on the replacement\nshop/prod healed in 30.0 s\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			tc.res.print(&b, tc.s3Deploy)
			if b.String() != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tc.want)
			}
		})
	}
}
