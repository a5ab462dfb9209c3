package suggest

import "testing"

func TestNearest(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"helth", "health"}, {"Health", "health"}, {"sokcet", "socket"}, {"hots", "hosts"},
		{"stauts", "status"}, {"sevrers", "servers"}, {"region", ""}, {"x", ""},
	} {
		if got := Nearest(tc.in, []string{"health", "socket", "hosts", "status", "servers"}); got != tc.want {
			t.Errorf("Nearest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
