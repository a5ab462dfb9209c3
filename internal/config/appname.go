package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jecloud/jecloud/internal/names"
)

// guessApp names the app when the config file does not: package.json's
// name, else the directory's name, made to fit the rules for app names.
func (c *Config) guessApp() error {
	pj := filepath.Join(c.Dir, "package.json")
	data, err := os.ReadFile(pj)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("read package.json: %w", err)
	default:
		var p struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(data, &p); err != nil {
			return fmt.Errorf("%s: %w (fix it, or set app = \"NAME\" in %s)", pj, err, FileName)
		}
		if p.Name != "" {
			return c.setGuess(Sanitize(p.Name), p.Name, pj+`'s "name"`)
		}
	}
	abs, err := filepath.Abs(c.Dir)
	if err != nil {
		return fmt.Errorf("app directory: %w", err)
	}
	base := filepath.Base(abs)
	return c.setGuess(Sanitize(base), base, "the directory's name")
}

func (c *Config) setGuess(app, from, where string) error {
	if err := names.CheckApp(app); err != nil {
		return fmt.Errorf("cannot use %q (from %s) as the app name: %w; set app = \"NAME\" in %s",
			from, where, err, filepath.Join(c.Dir, FileName))
	}
	c.App, c.AppFrom = app, where
	return nil
}

// Sanitize turns a package or directory name into an app name: the npm
// scope dropped ("@acme/shop" is "shop"), lower case, and every run of other
// characters replaced by one '-'. The result may still be invalid (empty).
func Sanitize(s string) string {
	if strings.HasPrefix(s, "@") {
		if i := strings.IndexByte(s, '/'); i >= 0 {
			s = s[i+1:]
		}
	}
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimRight(b.String(), "-")
	if len(out) > 63 {
		out = strings.TrimRight(out[:63], "-")
	}
	return out
}
