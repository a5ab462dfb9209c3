package bootstrap

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHr2b4vUQwXBdM1H1nKc7l4d0W6l5hQm8Qx0G2c0m4Yb ada@laptop"

func TestUserData(t *testing.T) {
	sum, tickSum := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	common := []string{"#cloud-config\n", "name: jecloud", `sudo: "ALL=(root) NOPASSWD: /usr/local/bin/jeagent"`,
		`- "` + testKey + `"`, "echo '" + sum + "  '\"$copy\" | sha256sum -c --status -", "/usr/local/bin/jeagent init", "ssh_pwauth: false",
		"[systemctl, start, --no-block, jecloud-install.service]", "touch " + Ready}
	for _, tc := range []struct {
		name        string
		tick        string
		want, avoid []string
	}{
		{"jeagent alone", "", []string{"if [ -f " + Upload + " ]; then"}, []string{"jeagent-tick"}},
		{"with jeagent-tick", tickSum, []string{
			"if [ -f " + Upload + " ] && [ -f " + TickUpload + " ]; then",
			"&& echo '" + tickSum + "  '\"$tick\" | sha256sum -c --status -; then",
			"install -m 0755 -o root -g root \"$tick\" /usr/local/bin/jeagent-tick",
			"rm -f \"$copy\" " + Upload + " \"$tick\" " + TickUpload,
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ud, err := UserData(UserDataOptions{App: "shop", Env: "prod", Server: "web1", AuthorizedKey: testKey,
				AgentSHA256: sum, TickSHA256: tc.tick})
			if err != nil {
				t.Fatal(err)
			}
			s := string(ud)
			for _, want := range append(common, tc.want...) {
				if !strings.Contains(s, want) {
					t.Errorf("user-data lacks %q:\n%s", want, s)
				}
			}
			for _, avoid := range tc.avoid {
				if strings.Contains(s, avoid) {
					t.Errorf("user-data has %q:\n%s", avoid, s)
				}
			}
			// jeagent-tick goes in before jeagent init, which looks for it.
			if tc.tick != "" && strings.Index(s, "/usr/local/bin/jeagent-tick") > strings.Index(s, "/usr/local/bin/jeagent init") {
				t.Errorf("jeagent-tick is installed after jeagent init:\n%s", s)
			}
			// cloud-init itself must accept it.
			ci, err := exec.LookPath("cloud-init")
			if err != nil {
				if os.Getenv("CI") != "" {
					t.Fatal("cloud-init is missing (apt-get install cloud-init)")
				}
				t.Skip("no cloud-init to check the schema")
			}
			f := filepath.Join(t.TempDir(), "user-data")
			os.WriteFile(f, ud, 0o600)
			if out, err := exec.Command(ci, "schema", "--config-file", f).CombinedOutput(); err != nil {
				t.Errorf("cloud-init schema: %v\n%s\n%s", err, out, s)
			}
		})
	}
}

func TestUserDataRefuses(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	for name, o := range map[string]UserDataOptions{
		"bad checksum":          {AuthorizedKey: testKey, AgentSHA256: "abc"},
		"shell in the checksum": {AuthorizedKey: testKey, AgentSHA256: strings.Repeat("a", 63) + "'"},
		"two keys":              {AuthorizedKey: testKey + "\n" + testKey, AgentSHA256: sum},
		"not a key":             {AuthorizedKey: "hello", AgentSHA256: sum},
		"a quote":               {AuthorizedKey: testKey + `"`, AgentSHA256: sum},
		"bad tick checksum":     {AuthorizedKey: testKey, AgentSHA256: sum, TickSHA256: sum[:63] + "'"},
	} {
		if _, err := UserData(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
