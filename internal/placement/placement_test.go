package placement

import (
	"maps"
	"regexp"
	"strings"
	"testing"
)

// TestCheckRole: CheckRole accepts exactly what ^[a-z][a-z0-9-]{0,29}$ does.
func TestCheckRole(t *testing.T) {
	re := regexp.MustCompile(`^[a-z][a-z0-9-]{0,29}$`)
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"web", true}, {"worker", true}, {"w", true}, {"db-2", true}, {"a-", true},
		{strings.Repeat("a", 30), true}, {strings.Repeat("a", 31), false},
		{"", false}, {"2web", false}, {"-web", false}, {"Web", false}, {"we_b", false},
		{"we b", false}, {"wéb", false}, {"web\n", false}, {"../x", false},
	} {
		err := CheckRole(tc.name)
		if (err == nil) != tc.ok || re.MatchString(tc.name) != tc.ok {
			t.Errorf("CheckRole(%q) = %v, want ok %v (regexp: %v)", tc.name, err, tc.ok, re.MatchString(tc.name))
		}
		if err != nil && !strings.Contains(err.Error(), "1 to 30 of a-z") {
			t.Errorf("CheckRole(%q): the error does not give the rule: %v", tc.name, err)
		}
	}
}

func TestCounts(t *testing.T) {
	types := []string{"web", "worker", "clock", "mailer"}
	roles := map[string][]string{"worker": {"worker", "clock"}}
	base := map[string]int{"web": 2, "worker": 3, "clock": 1, "mailer": 1}
	for _, tc := range []struct {
		name string
		srv  *Server
		want map[string]int
	}{
		{"never placed: runs everything", nil,
			map[string]int{"web": 2, "worker": 3, "clock": 1, "mailer": 1}},
		{"web server, worker servers exist", &Server{Role: "web", Roles: []string{"web", "worker"}},
			map[string]int{"web": 2, "worker": 0, "clock": 0, "mailer": 1}},
		{"worker server", &Server{Role: "worker", Roles: []string{"web", "worker"}},
			map[string]int{"web": 0, "worker": 3, "clock": 1, "mailer": 0}},
		{"web server, no worker server: worker types stay here", &Server{Role: "web", Roles: []string{"web"}},
			map[string]int{"web": 2, "worker": 3, "clock": 1, "mailer": 1}},
		{"role left out means web", &Server{Roles: []string{"worker"}},
			map[string]int{"web": 2, "worker": 0, "clock": 0, "mailer": 1}},
		{"worker server, roles unknown: its own only", &Server{Role: "worker"},
			map[string]int{"web": 0, "worker": 3, "clock": 1, "mailer": 0}},
		{"a role [roles] does not name runs nothing", &Server{Role: "batch", Roles: []string{"web", "batch"}},
			map[string]int{"web": 0, "worker": 0, "clock": 0, "mailer": 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse("app/jecloud.toml", roles, types)
			if err != nil {
				t.Fatal(err)
			}
			got := m.Counts(tc.srv, types, func(typ string) int { return base[typ] })
			if !maps.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	types := []string{"web", "worker", "clock"}
	for _, tc := range []struct {
		name  string
		roles map[string][]string
		want  []string // parts of the message: file, value, fix
	}{
		{"bad role name", map[string][]string{"Worker": {"worker"}},
			[]string{"app/jecloud.toml", `role "Worker"`, "a-z, 0-9 and '-'"}},
		{"type in two roles", map[string][]string{"worker": {"worker"}, "batch": {"worker"}},
			[]string{"app/jecloud.toml", `"worker"`, "batch and worker", "keep it in one list"}},
		{"type not in the Procfile", map[string][]string{"worker": {"wroker"}},
			[]string{"app/jecloud.toml", `"wroker"`, "web, worker, clock", "remove it or add it to the Procfile"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("app/jecloud.toml", tc.roles, types)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := Parse("f", map[string][]string{"worker": {"anything"}}, nil); err != nil {
		t.Errorf("types unknown (client side): %v", err)
	}
}

func TestHomeless(t *testing.T) {
	m, _ := Parse("f", map[string][]string{"worker": {"worker"}, "cron": {"clock"}}, nil)
	if got := strings.Join(m.Homeless([]string{"web", "worker"}), ","); got != "cron" {
		t.Errorf("Homeless = %q, want cron", got)
	}
	if got := strings.Join(m.Roles(), ","); got != "web,cron,worker" {
		t.Errorf("Roles = %q", got)
	}
	if got := strings.Join(m.TypesOf("worker"), ","); got != "worker" {
		t.Errorf("TypesOf = %q", got)
	}
}

func TestSame(t *testing.T) {
	for _, tc := range []struct {
		a, b *Server
		want bool
	}{
		{nil, &Server{Role: "web", Roles: []string{"web"}}, true},
		{nil, &Server{}, true},
		{&Server{Role: "worker"}, &Server{Role: "worker", Roles: []string{"worker"}}, true},
		{&Server{Role: "web", Roles: []string{"worker", "web"}}, &Server{Role: "web", Roles: []string{"web", "worker"}}, true},
		{nil, &Server{Role: "web", Roles: []string{"web", "worker"}}, false},
		{&Server{Role: "worker"}, &Server{Role: "web"}, false},
	} {
		if got := Same(tc.a, tc.b); got != tc.want {
			t.Errorf("Same(%+v, %+v) = %v", tc.a, tc.b, got)
		}
	}
}
