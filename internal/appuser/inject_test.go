package appuser

import (
	"os/user"
	"strings"
	"testing"
)

// trickyNames are app and environment names whose joins with '-' collide:
// (a, b-c) and (a-b, c) were one user before issue #17.
var trickyNames = []string{
	"a", "b", "c", "a-b", "b-c", "a-b-c", "0", "a0", "shop", "prod", "eu", "shop-prod", "prod-eu",
	strings.Repeat("x", 14), strings.Repeat("x", 15), strings.Repeat("x", 16),
	strings.Repeat("x", 13) + "-a", "a-" + strings.Repeat("x", 13),
	strings.Repeat("a", 62), strings.Repeat("a", 63), strings.Repeat("a", 62) + "b",
	strings.Repeat("a-", 31) + "a", strings.Repeat("a-", 30) + "ab",
}

// TestNameInjective is the attack of issue #17: two app environments must
// never share a Unix user (one could read the other's config vars).
func TestNameInjective(t *testing.T) {
	seen := map[string]string{}
	for _, app := range trickyNames {
		for _, env := range trickyNames {
			n := Name(app, env)
			if len(n) > 31 {
				t.Errorf("Name(%s, %s) = %s: %d characters, systemd takes 31 at most", app, env, n, len(n))
			}
			pair := app + "/" + env
			if other, ok := seen[n]; ok {
				t.Fatalf("%s and %s both get user %s", other, pair, n)
			}
			seen[n] = pair
		}
	}
}

// TestResolveLegacy: a user made before issue #17 is kept only by the app
// environment its comment names; a clash with a user of the new scheme is
// refused, naming its owner.
func TestResolveLegacy(t *testing.T) {
	users := map[string]string{} // name -> comment
	lookup = func(name string) (*user.User, error) {
		c, ok := users[name]
		if !ok {
			return nil, user.UnknownUserError(name)
		}
		return &user.User{Username: name, Name: c, Uid: "999", Gid: "999"}, nil
	}
	defer func() { lookup = user.Lookup }()
	long := strings.Repeat("l", 40)
	// shop/prod-eu was deployed first by an old version; shop-prod/eu then
	// shared its user.
	users["jc-shop-prod-eu"] = "JeCloud app shop/prod-eu"
	users[LegacyName(long, "prod")] = Comment(long, "prod")
	users["jc-x_y"] = "JeCloud app other/thing"
	users["jc-z_y"] = "postgres"
	for _, c := range []struct{ app, env, want, err string }{
		{"shop", "prod-eu", "jc-shop-prod-eu", ""},      // legacy user, its own: kept
		{"shop-prod", "eu", "jc-shop-prod_eu", ""},      // legacy user of another: a new one
		{long, "prod", LegacyName(long, "prod"), ""},    // legacy hash, its own: kept
		{long, "staging", Name(long, "staging"), ""},    // nothing yet: the new scheme
		{"shop", "prod", "jc-shop_prod", ""},            // nothing yet
		{"x", "y", "", "it belongs to app other/thing"}, // the name is taken: refused
		{"z", "y", "", `its comment is "postgres"`},     // by someone else
	} {
		got, err := Resolve(c.app, c.env)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Resolve(%s, %s) = %q, %v; want an error with %q", c.app, c.env, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Resolve(%s, %s) = %q, %v; want %q", c.app, c.env, got, err, c.want)
		}
	}
	// Once created, the new user is found again (and the legacy one is not used).
	users["jc-shop-prod_eu"] = Comment("shop-prod", "eu")
	if got, err := Resolve("shop-prod", "eu"); err != nil || got != "jc-shop-prod_eu" {
		t.Errorf("after useradd: Resolve = %q, %v", got, err)
	}
}
