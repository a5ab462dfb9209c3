package sysd

import (
	"context"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var trickyNames = []string{
	"a", "b", "c", "a-b", "b-c", "a-b-c", "0", "shop", "prod", "eu", "shop-prod", "prod-eu", "web", "prod-web", "redis", "eu-redis",
	strings.Repeat("a", 62), strings.Repeat("a", 63), strings.Repeat("a-", 31) + "a",
}

// TestUnitNamesInjective: no app environment's unit prefix starts another's,
// so matching units by AppPrefix never reaches another app environment
// (issue #17: deploying shop/prod stopped shop/prod-eu's units).
func TestUnitNamesInjective(t *testing.T) {
	type pair struct{ app, env string }
	var pairs []pair
	for _, a := range trickyNames {
		for _, e := range trickyNames {
			pairs = append(pairs, pair{a, e})
		}
	}
	for _, p := range pairs {
		for _, q := range pairs {
			if p == q {
				continue
			}
			pp, qp := AppPrefix(p.app, p.env), AppPrefix(q.app, q.env)
			for _, unit := range []string{qp + "web@1.service", qp + "redis.service", qp + "redis-backup.timer", qp + "eu-web@.socket"} {
				if strings.HasPrefix(unit, pp) {
					t.Fatalf("%s of %s/%s matches %s/%s's prefix %s", unit, q.app, q.env, p.app, p.env, pp)
				}
			}
		}
		if n := len(AppPrefix(p.app, p.env) + "web@1.service"); n > 255 {
			t.Errorf("%s/%s: unit name of %d characters", p.app, p.env, n)
		}
	}
}

func writeUnits(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, desc := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("[Unit]\nDescription="+desc+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLegacyUnits: of the units named before issue #17, an app environment
// takes over exactly those described as its own.
func TestLegacyUnits(t *testing.T) {
	dir := t.TempDir()
	writeUnits(t, dir, map[string]string{
		"jecloud-shop-prod-web@.service":            "shop prod: web process %i (JeCloud)",
		"jecloud-shop-prod-web@.socket":             "shop prod: web socket %i (JeCloud)",
		"jecloud-shop-prod-redis.service":           "Redis of shop prod (JeCloud)",
		"jecloud-shop-prod-eu-web@.service":         "shop prod-eu: web process %i (JeCloud)",
		"jecloud-shop-prod-eu-redis.service":        "Redis of shop-prod eu (JeCloud)",
		"jecloud-shop-prod-eu-redis-backup.service": "JeCloud backup of shop-prod/eu redis to S3",
		"jecloud-shop-prod-eu-redis-backup.timer":   "JeCloud backups of shop-prod/eu redis (daily)",
		"jecloud-shop-prod-eu-mongodb.service":      "MongoDB of shop prod-eu (JeCloud)",
		"jecloud-shop-prod-other.service":           "someone else's",
		"jecloud-shop_prod_web@.service":            "shop prod: web process %i (JeCloud)",
	})
	for _, c := range []struct {
		app, env string
		want     []string
	}{
		{"shop", "prod", []string{"jecloud-shop-prod-redis.service", "jecloud-shop-prod-web@.service", "jecloud-shop-prod-web@.socket"}},
		{"shop", "prod-eu", []string{"jecloud-shop-prod-eu-mongodb.service", "jecloud-shop-prod-eu-web@.service"}},
		{"shop-prod", "eu", []string{"jecloud-shop-prod-eu-redis-backup.service", "jecloud-shop-prod-eu-redis-backup.timer", "jecloud-shop-prod-eu-redis.service"}},
		{"shop", "prod-eu-redis", nil},
	} {
		got, err := LegacyUnits(dir, c.app, c.env)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("LegacyUnits(%s, %s) = %v, %v; want %v", c.app, c.env, got, err, c.want)
		}
	}
	for _, c := range []struct{ app, env, suffix, want string }{
		{"shop", "prod", "redis.service", "jecloud-shop-prod-redis.service"},       // legacy, its own: kept until the next deploy
		{"shop-prod", "eu", "redis.service", "jecloud-shop-prod-eu-redis.service"}, // legacy, its own
		{"shop", "prod-eu", "redis.service", "jecloud-shop_prod-eu_redis.service"}, // legacy name, another's: the new name
		{"shop", "prod", "web@.service", "jecloud-shop_prod_web@.service"},         // the new name exists
		{"a", "b", "mongodb.service", "jecloud-a_b_mongodb.service"},
	} {
		if got := AppUnit(dir, c.app, c.env, c.suffix); got != c.want {
			t.Errorf("AppUnit(%s, %s, %s) = %s; want %s", c.app, c.env, c.suffix, got, c.want)
		}
	}
}

type fakeStopper struct {
	loaded, stopped []string
	reloaded        bool
}

func (f *fakeStopper) Units(_ context.Context, patterns []string) ([]string, error) {
	var out []string
	for _, u := range f.loaded {
		for _, p := range patterns {
			if ok, _ := path.Match(p, u); ok {
				out = append(out, u)
			}
		}
	}
	return out, nil
}
func (f *fakeStopper) Stop(_ context.Context, n string) error {
	f.stopped = append(f.stopped, n)
	return nil
}
func (f *fakeStopper) Disable(context.Context, []string) error { return nil }
func (f *fakeStopper) Reload(context.Context) error            { f.reloaded = true; return nil }

// TestRetireLegacy: moving shop/prod to the new names stops its old units
// and none of shop/prod-eu's, whose names start the same.
func TestRetireLegacy(t *testing.T) {
	dir := t.TempDir()
	writeUnits(t, dir, map[string]string{
		"jecloud-shop-prod-web@.service":    "shop prod: web process %i (JeCloud)",
		"jecloud-shop-prod-eu-web@.service": "shop prod-eu: web process %i (JeCloud)",
	})
	os.Mkdir(filepath.Join(dir, "multi-user.target.wants"), 0o755)
	for _, l := range []string{"jecloud-shop-prod-web@1.service", "jecloud-shop-prod-web@3.service", "jecloud-shop-prod-eu-web@1.service"} {
		os.Symlink("../"+strings.Replace(l, "@1.", "@.", 1), filepath.Join(dir, "multi-user.target.wants", l))
	}
	legacy, _ := LegacyUnits(dir, "shop", "prod")
	sd := &fakeStopper{loaded: []string{"jecloud-shop-prod-web@1.service", "jecloud-shop-prod-web@2.service",
		"jecloud-shop-prod-eu-web@1.service", "jecloud-shop-prod-eu-web@2.service"}}
	if err := RetireLegacy(context.Background(), sd, dir, legacy, io.Discard); err != nil {
		t.Fatal(err)
	}
	if want := []string{"jecloud-shop-prod-web@1.service", "jecloud-shop-prod-web@2.service"}; !reflect.DeepEqual(sd.stopped, want) || !sd.reloaded {
		t.Errorf("stopped %v (reloaded %v); want %v", sd.stopped, sd.reloaded, want)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
	files, _ := filepath.Glob(filepath.Join(dir, "*.service"))
	if len(left) != 1 || filepath.Base(left[0]) != "jecloud-shop-prod-eu-web@1.service" || len(files) != 1 || filepath.Base(files[0]) != "jecloud-shop-prod-eu-web@.service" {
		t.Errorf("left: %v %v", left, files)
	}
}
