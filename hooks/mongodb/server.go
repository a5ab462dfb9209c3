package mongodb

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/hook"
)

// settings are the hook's keys of sys/server.json:
//
//	{"mongodb": {
//	   "server": "/usr/bin/mongod",
//	   "port_base": 27100,
//	   "apt": {"source": "deb [ signed-by=/usr/share/keyrings/mongodb-server-7.0.asc ] URL bookworm/mongodb-org/7.0 main",
//	           "key_url": "URL of that key"}}}
//
// server is the mongod binary the units run (a test points it at a
// wire-compatible stand-in). apt says where MongoDB's official packages
// come from; without it a missing mongod is an error that says what to do.
type settings struct {
	path    string
	MongoDB struct {
		Server   string `json:"server"`
		PortBase int    `json:"port_base"`
		Apt      struct {
			Source string `json:"source"`
			KeyURL string `json:"key_url"`
		} `json:"apt"`
	} `json:"mongodb"`
}

// readSettings takes the hook's settings from the request (server.json as
// the agent read it).
func readSettings(req hook.Request) (settings, error) {
	s := settings{path: req.ServerJSON()}
	err := req.Settings("mongodb", &s.MongoDB)
	return s, err
}

func (s settings) server() string {
	if s.MongoDB.Server != "" {
		return s.MongoDB.Server
	}
	return "/usr/bin/mongod"
}

func (s settings) portBase() int {
	if s.MongoDB.PortBase > 0 {
		return s.MongoDB.PortBase
	}
	return 27100
}

// aptListPath is where the hook writes the apt source of MongoDB's packages.
var aptListPath = "/etc/apt/sources.list.d/jecloud-mongodb-org.list"

// ensureServer makes sure the configured mongod exists (installing
// MongoDB's official package when server.json says where it comes from)
// and has the declared version.
func ensureServer(ctx context.Context, s settings, want string, log io.Writer) error {
	server := s.server()
	if _, err := os.Stat(server); err != nil {
		if s.MongoDB.Apt.Source == "" {
			return fmt.Errorf("%s not found: install MongoDB %s from MongoDB's official packages (mongodb-org-server), "+
				"or add \"mongodb\": {\"apt\": {\"source\": ..., \"key_url\": ...}} to %s so that jeagent installs it, "+
				"or point \"mongodb\": {\"server\": PATH} at a mongod (docs/services.md)", server, orAny(want), s.path)
		}
		if err := aptInstall(ctx, s, want, log); err != nil {
			return err
		}
	}
	out, err := exec.CommandContext(ctx, server, "--version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s --version: %w: %s", server, err, strings.TrimSpace(string(out)))
	}
	return checkVersion(server, string(out), want)
}

func orAny(v string) string {
	if v == "" {
		return "(any version)"
	}
	return v
}

var signedByRE = regexp.MustCompile(`signed-by=(\S+)`)

// aptInstall adds MongoDB's apt source (and its key) and installs
// mongodb-org-server at the declared version.
func aptInstall(ctx context.Context, s settings, want string, log io.Writer) error {
	src := strings.TrimSpace(s.MongoDB.Apt.Source)
	if !strings.HasPrefix(src, "deb ") {
		return fmt.Errorf("%s: mongodb.apt.source = %q: give one apt source line starting with \"deb \"", s.path, src)
	}
	if m := signedByRE.FindStringSubmatch(src); m != nil {
		if _, err := os.Stat(m[1]); err != nil {
			if s.MongoDB.Apt.KeyURL == "" {
				return fmt.Errorf("%s: the apt source is signed by %s, which is missing: set mongodb.apt.key_url or put the key there", s.path, m[1])
			}
			if err := fetchKey(ctx, s.MongoDB.Apt.KeyURL, m[1]); err != nil {
				return err
			}
		}
	}
	if err := atomicfile.WriteFile(aptListPath, []byte(src+"\n"), 0o644); err != nil {
		return err
	}
	pkg := "mongodb-org-server"
	if want != "" {
		pkg += "=" + strings.TrimSuffix(want, ".x")
		if strings.Count(want, ".") < 2 {
			pkg += ".*"
		}
	}
	fmt.Fprintf(log, "installing %s (MongoDB's package)\n", pkg)
	for _, args := range [][]string{
		{"update", "-o", "Dir::Etc::sourcelist=" + aptListPath, "-o", "Dir::Etc::sourceparts=-"},
		{"install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=120", pkg},
	} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %w", strings.Join(args, " "), err)
		}
	}
	// The package's own mongod.service is not used: JeCloud runs one per app.
	exec.Command("systemctl", "disable", "--now", "mongod.service").Run()
	return nil
}

func fetchKey(ctx context.Context, url, path string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("mongodb.apt.key_url %q: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetching MongoDB's apt key: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetching MongoDB's apt key from %s: %s", url, resp.Status)
	}
	key, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if !strings.Contains(string(key), "BEGIN PGP PUBLIC KEY BLOCK") {
		return fmt.Errorf("%s is not an ASCII-armoured PGP key: point mongodb.apt.key_url at the .asc key", url)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, key, 0o644)
}
