package domains

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jecloud/jecloud/internal/state"
)

var (
	shop = state.AppEnv{App: "shop", Env: "prod"}
	blog = state.AppEnv{App: "blog", Env: "prod"}
)

func tree(t *testing.T, base string) state.Layout {
	t.Helper()
	l := state.Layout{Root: t.TempDir()}
	if base != "" {
		if err := state.Write(l.ServerJSON(), state.Server{Proxy: &state.Proxy{BaseDomain: base}}); err != nil {
			t.Fatal(err)
		}
	}
	for ae, d := range map[state.AppEnv][]string{shop: {"shop.example.com"}, blog: nil} {
		if err := state.Write(l.AppJSON(ae), state.App{CurrentVersion: "841bc9a0e2f1", Domains: d}); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func domainsOf(t *testing.T, l state.Layout, ae state.AppEnv) []string {
	t.Helper()
	var a state.App
	if err := state.Read(l.AppJSON(ae), &a); err != nil {
		t.Fatal(err)
	}
	return a.Domains
}

func TestAdd(t *testing.T) {
	for _, tc := range []struct {
		name    string
		base    string
		ae      state.AppEnv
		hosts   []string
		want    string   // error part, "" for success
		added   []string // on success
		domains []string // of ae afterwards
	}{
		{"new host", "", blog, []string{"blog.example.com"}, "", []string{"blog.example.com"}, []string{"blog.example.com"}},
		{"two, one repeated", "", blog, []string{"a.example.com", "b.example.com", "a.example.com"}, "", []string{"a.example.com", "b.example.com"}, []string{"a.example.com", "b.example.com"}},
		{"already its own", "", shop, []string{"shop.example.com"}, "", nil, []string{"shop.example.com"}},
		{"held by another", "", blog, []string{"ok.example.com", "shop.example.com"}, `host name "shop.example.com" is held by shop/prod on this server`, nil, nil},
		{"default name of another", "apps.example.com", blog, []string{"shop-prod.apps.example.com"}, `"shop-prod.apps.example.com" is held by shop/prod`, nil, nil},
		{"its own default name", "apps.example.com", blog, []string{"blog-prod.apps.example.com"}, "", []string{"blog-prod.apps.example.com"}, []string{"blog-prod.apps.example.com"}},
		{"invalid", "", blog, []string{"ok.example.com", "*.example.com"}, `invalid host name "*.example.com"`, nil, nil},
		{"none", "", blog, nil, "give at least one host name", nil, nil},
		{"an app env not deployed yet", "", state.AppEnv{App: "new", Env: "dev"}, []string{"new.example.com"}, "", []string{"new.example.com"}, []string{"new.example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := tree(t, tc.base)
			added, err := Add(l, tc.ae, tc.hosts)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Add(%v) = %v, want %q", tc.hosts, err, tc.want)
				}
			} else if err != nil {
				t.Fatalf("Add(%v): %v", tc.hosts, err)
			}
			if !slices.Equal(added, tc.added) {
				t.Errorf("added %v, want %v", added, tc.added)
			}
			if _, err := os.Stat(l.AppJSON(tc.ae)); err == nil || tc.domains != nil {
				if got := domainsOf(t, l, tc.ae); !slices.Equal(got, tc.domains) {
					t.Errorf("%s's domains %v, want %v", tc.ae, got, tc.domains)
				}
			}
		})
	}
}

func TestConflictNamesTheFix(t *testing.T) {
	l := tree(t, "")
	_, err := Add(l, blog, []string{"shop.example.com"})
	var c *ConflictError
	if !errors.As(err, &c) || c.Owner != shop {
		t.Fatalf("Add: %v", err)
	}
	if !strings.Contains(err.Error(), "jepush domains:remove prod shop.example.com") {
		t.Errorf("no fix in %q", err)
	}
}

func TestBrokenAppJSON(t *testing.T) {
	l := tree(t, "")
	os.WriteFile(l.AppJSON(shop), []byte("{\"domains\": [\n"), 0o644)
	_, err := Add(l, blog, []string{"blog.example.com"})
	if err == nil || !strings.Contains(err.Error(), filepath.Join("shop", "prod", "app.json")) {
		t.Errorf("Add with a broken app.json elsewhere: %v", err)
	}
}

func TestRemoveSetMaintenance(t *testing.T) {
	l := tree(t, "")
	if ok, err := Remove(l, shop, "shop.example.com"); !ok || err != nil {
		t.Fatalf("Remove: %v %v", ok, err)
	}
	if ok, err := Remove(l, shop, "shop.example.com"); ok || err != nil {
		t.Fatalf("Remove again: %v %v", ok, err)
	}
	if d := domainsOf(t, l, shop); d != nil {
		t.Errorf("domains after remove: %v", d)
	}
	if ch, err := Set(l, blog, []string{"b.example.com", "a.example.com"}); !ch || err != nil {
		t.Fatalf("Set: %v %v", ch, err)
	}
	if ch, err := Set(l, blog, []string{"b.example.com", "a.example.com"}); ch || err != nil {
		t.Fatalf("Set again: %v %v", ch, err)
	}
	if _, err := Set(l, shop, []string{"a.example.com"}); err == nil {
		t.Error("Set took blog's host for shop")
	}
	for _, on := range []bool{true, true, false} {
		ch, err := SetMaintenance(l, shop, on)
		var a state.App
		state.Read(l.AppJSON(shop), &a)
		if err != nil || a.Maintenance != on {
			t.Fatalf("SetMaintenance(%v): %v, maintenance %v", on, err, a.Maintenance)
		}
		_ = ch
	}
}

// TestRace: many app environments add the same host at once: one wins.
func TestRace(t *testing.T) {
	l := tree(t, "")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Add(l, state.AppEnv{App: "app" + string(rune('a'+i)), Env: "prod"}, []string{"same.example.com"})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		}
	}
	if won != 1 {
		t.Errorf("%d app environments got the same host: %v", won, errs)
	}
}
