package appuser

import (
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	if got := Name("shop", "prod"); got != "jc-shop-prod" {
		t.Errorf("Name = %s", got)
	}
	long := Name(strings.Repeat("a", 40), "prod")
	if len(long) > 32 || !strings.HasPrefix(long, "jc-") || long == Name(strings.Repeat("a", 41), "prod") {
		t.Errorf("long Name = %s", long)
	}
}
