package appuser

import (
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	if got := Name("shop", "prod"); got != "jc-shop_prod" {
		t.Errorf("Name = %s", got)
	}
	long := Name(strings.Repeat("a", 40), "prod")
	if len(long) > MaxName || !strings.HasPrefix(long, "jc-") || long == Name(strings.Repeat("a", 41), "prod") {
		t.Errorf("long Name = %s", long)
	}
}
