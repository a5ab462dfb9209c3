package builtin

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/jecloud/jecloud/internal/hook"
)

func TestServiceDestroy(t *testing.T) {
	for _, data := range []bool{false, true} {
		dir := t.TempDir()
		p := func(n string) string { return filepath.Join(dir, n) }
		os.MkdirAll(p("redis"), 0o700)
		os.WriteFile(p("redis/dump.rdb"), []byte("x"), 0o600)
		os.WriteFile(p("redis.conf"), []byte("x"), 0o600)
		os.WriteFile(p("redis.password"), []byte("x"), 0o600)
		s := Service{Name: "Redis", Config: p("redis.conf"), DataDir: p("redis"), Secrets: []string{p("redis.password")}}
		e := Env{Req: hook.Request{App: "shop", Env: "prod", Data: data}, Log: io.Discard}
		if err := s.Destroy(context.Background(), t.TempDir(), e); err != nil {
			t.Fatal(err)
		}
		for path, kept := range map[string]bool{p("redis.conf"): false, p("redis/dump.rdb"): !data, p("redis.password"): !data} {
			if _, err := os.Stat(path); (err == nil) != kept {
				t.Errorf("data=%v: %s kept = %v, want %v", data, filepath.Base(path), err == nil, kept)
			}
		}
	}
}
