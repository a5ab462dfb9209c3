package sysd

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// AppPrefix starts the name of every unit of app environment APP/ENV
// (process templates jecloud-APP_ENV_TYPE@.service, services
// jecloud-APP_ENV_redis.service, backups ...): "jecloud-APP_ENV_". APP
// and ENV cannot contain '_', so a unit name that starts with it is this
// app environment's and no other's (issue #17).
func AppPrefix(app, env string) string { return "jecloud-" + app + "_" + env + "_" }

// LegacyPrefix is how versions before issue #17 started the units of
// APP/ENV: "jecloud-APP-ENV-". It is no proof of ownership: shop/prod-eu's
// units start with shop/prod's legacy prefix, and (a, b-c) and (a-b, c)
// had the same names. LegacyUnits checks the unit's description too.
func LegacyPrefix(app, env string) string { return "jecloud-" + app + "-" + env + "-" }

// DescribesAppEnv reports whether a unit's Description is one that JeCloud
// writes for app/env: "APP ENV: web process 1 (JeCloud)", "Redis of APP ENV
// (JeCloud)", "JeCloud backup of APP/ENV redis to S3"... Names hold no
// spaces, slashes or colons, so this is exact.
func DescribesAppEnv(desc, app, env string) bool {
	return strings.HasPrefix(desc, app+" "+env+": ") ||
		strings.Contains(desc, " of "+app+" "+env+" (") ||
		strings.Contains(desc, " of "+app+"/"+env+" ")
}

// LegacyUnits lists the unit files in dir that versions before issue #17
// wrote for app/env: named with LegacyPrefix and described as app/env's
// (DescribesAppEnv). Another app environment's units are never in it.
func LegacyUnits(dir, app, env string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	prefix := LegacyPrefix(app, env)
	var out []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		if d, err := description(filepath.Join(dir, e.Name())); err == nil && DescribesAppEnv(d, app, env) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// AppUnit is the name of app/env's unit AppPrefix+suffix (suffix
// "redis.service"), or its legacy name while only a unit file of the
// legacy name, described as app/env's, is in dir: a server deployed before
// issue #17 keeps working until the next deploy renames the unit.
func AppUnit(dir, app, env, suffix string) string {
	name := AppPrefix(app, env) + suffix
	if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
		return name
	}
	old := LegacyPrefix(app, env) + suffix
	if d, err := description(filepath.Join(dir, old)); err == nil && DescribesAppEnv(d, app, env) {
		return old
	}
	return name
}

// description reads the Description= of a unit file.
func description(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Description="); ok {
			return d, nil
		}
	}
	return "", sc.Err()
}

// UnitStopper is what RetireLegacy asks of systemd (Bus).
type UnitStopper interface {
	Units(ctx context.Context, patterns []string) ([]string, error)
	Stop(ctx context.Context, name string) error
	Disable(ctx context.Context, names []string) error
	Reload(ctx context.Context) error
}

// RetireLegacy stops and disables the units of the given files in dir (for
// a template, each loaded instance of it), exactly those, then removes the
// files and reloads systemd. The callers pass what LegacyUnits found.
func RetireLegacy(ctx context.Context, sd UnitStopper, dir string, files []string, log io.Writer) error {
	if len(files) == 0 {
		return nil
	}
	for _, f := range files {
		names := []string{f}
		if strings.Contains(f, "@.") {
			loaded, err := sd.Units(ctx, []string{strings.Replace(f, "@.", "@*.", 1)})
			if err != nil {
				return err
			}
			names = loaded
		}
		for _, n := range names {
			fmt.Fprintf(log, "stopping %s: renamed (units are named jecloud-APP_ENV_... since issue #17)\n", n)
			if err := sd.Stop(ctx, n); err != nil {
				return err
			}
			sd.Disable(ctx, []string{n}) // a unit never enabled is no error
		}
	}
	for _, f := range files {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !os.IsNotExist(err) {
			return err
		}
		// Links of instances that were enabled but not loaded.
		wants, _ := filepath.Glob(filepath.Join(dir, "*.wants", strings.Replace(f, "@.", "@*.", 1)))
		for _, w := range wants {
			os.Remove(w)
		}
	}
	return sd.Reload(ctx)
}

// RetireLegacyApp retires (RetireLegacy) app/env's units named before
// issue #17 LegacyPrefix+suffix, for each suffix ("redis.service"), if
// there are any: the caller then starts the unit of the new name.
func RetireLegacyApp(ctx context.Context, dir, app, env string, suffixes []string, log io.Writer) error {
	all, err := LegacyUnits(dir, app, env)
	if err != nil {
		return err
	}
	var files []string
	for _, f := range all {
		for _, s := range suffixes {
			if f == LegacyPrefix(app, env)+s {
				files = append(files, f)
			}
		}
	}
	if len(files) == 0 {
		return nil
	}
	sd, closeFn, err := Open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	return RetireLegacy(ctx, sd, dir, files, log)
}
