package bootstrap

import (
	"bufio"
	"errors"
	"strings"

	"golang.org/x/crypto/ssh"
)

// errNoKeys: cloud-init has not printed the host keys yet.
var errNoKeys = errors.New("the console shows no SSH host keys yet")

// HostKeysFromConsole reads the SSH host keys cloud-init prints on the
// console between -----BEGIN SSH HOST KEY KEYS----- and its END line (on
// EC2 lines may carry a prefix such as "ec2: "). The console is written by
// the instance itself before anyone can log in, and read through the EC2
// API with the account's credentials: an attacker in the network path
// cannot forge it.
func HostKeysFromConsole(console string) ([]ssh.PublicKey, error) {
	var keys []ssh.PublicKey
	in := false
	sc := bufio.NewScanner(strings.NewReader(console))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.Contains(line, "-----BEGIN SSH HOST KEY KEYS-----"):
			in, keys = true, nil // the last block wins
			continue
		case strings.Contains(line, "-----END SSH HOST KEY KEYS-----"):
			in = false
			continue
		}
		if !in {
			continue
		}
		for _, prefix := range []string{"ssh-", "ecdsa-"} {
			if i := strings.Index(line, prefix); i >= 0 {
				if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line[i:])); err == nil {
					keys = append(keys, k)
				}
				break
			}
		}
	}
	if len(keys) == 0 {
		return nil, errNoKeys
	}
	return keys, nil
}
