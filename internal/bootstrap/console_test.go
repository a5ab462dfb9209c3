package bootstrap

import (
	"crypto/ed25519"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestHostKeysFromConsole(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	k, _ := ssh.NewPublicKey(pub)
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " root@web1"
	for name, c := range map[string]struct {
		console string
		want    int
	}{
		"cloud-init":        {"Cloud-init v. 22.4.2 running 'modules:final'\n-----BEGIN SSH HOST KEY KEYS-----\n" + line + "\n-----END SSH HOST KEY KEYS-----\n", 1},
		"ec2 prefix":        {"ec2: -----BEGIN SSH HOST KEY KEYS-----\r\nec2: " + line + "\r\nec2: -----END SSH HOST KEY KEYS-----\r\n", 1},
		"not yet":           {"[  OK  ] Started ssh.service\n", 0},
		"cut off":           {"-----BEGIN SSH HOST KEY KEYS-----\n" + line[:30] + "\n", 0},
		"fingerprints only": {"-----BEGIN SSH HOST KEY FINGERPRINTS-----\n256 SHA256:abc root@web1 (ED25519)\n-----END SSH HOST KEY FINGERPRINTS-----\n", 0},
		"outside the block": {line + "\n", 0},
	} {
		keys, err := HostKeysFromConsole(c.console)
		if len(keys) != c.want || (c.want == 0) != (err != nil) {
			t.Errorf("%s: %d keys, %v", name, len(keys), err)
		}
		if c.want > 0 && string(keys[0].Marshal()) != string(k.Marshal()) {
			t.Errorf("%s: another key", name)
		}
	}
}
