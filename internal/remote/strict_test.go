package remote_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/remote"
	"github.com/jecloud/jecloud/internal/remote/sshdtest"
)

// TestHostKeyCheckingCannotBeTurnedOff: what turns host-key checking off
// for OpenSSH does not for jepush. Each ssh config below, against a server
// whose key is in no known_hosts, is refused with a HostKeyError before
// anything is sent (the server logs no login).
func TestHostKeyCheckingCannotBeTurnedOff(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	other := sshdtest.Start(t, sshdtest.Options{})
	cases := []struct {
		name, config, knownHosts string
		kind                     string
		notStrict                bool
	}{
		{name: "StrictHostKeyChecking no", config: "StrictHostKeyChecking no\n", kind: "unknown", notStrict: true},
		{name: "StrictHostKeyChecking accept-new", config: "StrictHostKeyChecking accept-new\n", kind: "unknown", notStrict: true},
		{name: "known_hosts is /dev/null", config: "StrictHostKeyChecking no\nUserKnownHostsFile /dev/null\n", kind: "unknown", notStrict: true},
		{name: "CheckHostIP no", config: "CheckHostIP no\n", kind: "unknown"},
		{name: "changed key and StrictHostKeyChecking no", config: "StrictHostKeyChecking no\n",
			knownHosts: sshdtest.KnownHostsLine([]string{s.Addr()}, other.HostKeys[0]), kind: "changed"},
		{name: "HostKeyAlias of a known host", config: "HostKeyAlias known\n",
			knownHosts: sshdtest.KnownHostsLine([]string{"known"}, other.HostKeys[0]), kind: "changed"},
	}
	refused := 0
	defer func() {
		t.Logf("summary: ssh configs that disable host-key checks for OpenSSH: %d cases, %d refused before login", len(cases), refused)
	}()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			home := s.Home(t, tc.knownHosts)
			sshdtest.WriteFile(t, filepath.Join(home, ".ssh", "config"),
				fmt.Sprintf("Host web1\n  HostName 127.0.0.1\n  Port %d\n  User %s\n  %s", s.Port, s.User, strings.ReplaceAll(tc.config, "\n", "\n  ")), 0o600)
			logins := strings.Count(s.Log(), "Accepted publickey")
			_, err := run(t, remote.Target{Dest: "web1", Agent: echoAgent}, opts(home), "has")
			var he *remote.HostKeyError
			if !errors.As(err, &he) || he.Kind != tc.kind {
				t.Fatalf("error %v, want a HostKeyError %q", err, tc.kind)
			}
			if tc.notStrict && !strings.Contains(err.Error(), "not honoured: jepush always checks host keys") {
				t.Errorf("error does not say the setting is not honoured:\n%v", err)
			}
			if n := strings.Count(s.Log(), "Accepted publickey"); n != logins {
				t.Errorf("the client logged in despite the host key (%d logins)", n-logins)
			}
			if !t.Failed() {
				refused++
			}
		})
	}
}

// TestNoInsecureHostKeyCallback: no code of the module (tests aside) may
// use ssh.InsecureIgnoreHostKey or set a HostKeyCallback other than the
// known_hosts check, so no configuration can reach such a path.
func TestNoInsecureHostKeyCallback(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") || strings.Contains(p, "/sshdtest/") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		src := string(b)
		rel, _ := filepath.Rel(root, p)
		for _, bad := range []string{"InsecureIgnoreHostKey", "FixedHostKey("} {
			if strings.Contains(src, bad) {
				t.Errorf("%s uses ssh.%s", rel, bad)
			}
		}
		for _, line := range strings.Split(src, "\n") {
			if strings.Contains(line, "HostKeyCallback:") && strings.TrimSpace(line) != "HostKeyCallback:   hk.check," {
				t.Errorf("%s sets a HostKeyCallback other than the known_hosts check: %s", rel, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("only %d Go files scanned under %s", files, root)
	}
}
