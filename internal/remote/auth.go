package remote

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// keys are what a connection offers to log in: the agent's keys and the
// identity files', with notes on what was skipped and why (shown when the
// server accepts none of them).
type keys struct {
	signers   []ssh.Signer
	fromAgent int
	files     []string // identity files loaded
	notes     []string
	agentConn net.Conn
}

func (k *keys) close() {
	if k.agentConn != nil {
		k.agentConn.Close()
	}
}

// loadKeys gathers the keys for hc, agent first (as OpenSSH does).
func loadKeys(hc *hostConfig) *keys {
	k := &keys{}
	var agentKeys []ssh.Signer
	if hc.AgentSocket != "" {
		conn, err := net.Dial("unix", hc.AgentSocket)
		if err != nil {
			k.notes = append(k.notes, fmt.Sprintf("SSH agent at %s: %v", hc.AgentSocket, err))
		} else {
			k.agentConn = conn
			s, err := agent.NewClient(conn).Signers()
			if err != nil {
				k.notes = append(k.notes, fmt.Sprintf("SSH agent at %s: %v", hc.AgentSocket, err))
			}
			agentKeys = s
		}
	}
	inAgent := func(pub ssh.PublicKey) bool {
		for _, s := range agentKeys {
			if bytes.Equal(s.PublicKey().Marshal(), pub.Marshal()) {
				return true
			}
		}
		return false
	}
	var filePubs []ssh.PublicKey
	var fileSigners []ssh.Signer
	for _, path := range hc.IdentityFiles {
		pub := readPublicKey(path + ".pub")
		data, err := os.ReadFile(path)
		if err != nil {
			if hc.ExplicitIdentities || !errors.Is(err, os.ErrNotExist) {
				k.notes = append(k.notes, fmt.Sprintf("identity file %s: %v", path, err))
			}
			if pub != nil {
				filePubs = append(filePubs, pub)
			}
			continue
		}
		s, err := ssh.ParsePrivateKey(data)
		var pm *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &pm):
			if pm.PublicKey != nil {
				pub = pm.PublicKey
			}
			if pub != nil {
				filePubs = append(filePubs, pub)
			}
			if pub == nil || !inAgent(pub) {
				k.notes = append(k.notes, fmt.Sprintf("skipped %s: it has a passphrase and the SSH agent does not hold it (run: ssh-add %s)", path, path))
			}
		case err != nil:
			k.notes = append(k.notes, fmt.Sprintf("skipped %s: %v", path, err))
		default:
			filePubs = append(filePubs, s.PublicKey())
			if !inAgent(s.PublicKey()) {
				fileSigners = append(fileSigners, s)
			}
			k.files = append(k.files, path)
		}
	}
	for _, s := range agentKeys {
		if hc.IdentitiesOnly && !contains(filePubs, s.PublicKey()) {
			continue
		}
		k.signers = append(k.signers, s)
		k.fromAgent++
	}
	k.signers = append(k.signers, fileSigners...)
	return k
}

func readPublicKey(path string) ssh.PublicKey {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil
	}
	return pub
}

func contains(list []ssh.PublicKey, k ssh.PublicKey) bool {
	for _, p := range list {
		if bytes.Equal(p.Marshal(), k.Marshal()) {
			return true
		}
	}
	return false
}

// authError explains a refused login.
func (k *keys) authError(hc *hostConfig, err error) error {
	var b bytes.Buffer
	if len(k.signers) == 0 {
		fmt.Fprintf(&b, "log in to %s as %s: no SSH key to offer: start ssh-agent and ssh-add your key, or name it with IdentityFile in ~/.ssh/config", hc.Alias, hc.User)
	} else {
		fmt.Fprintf(&b, "log in to %s as %s: the server accepted none of the %d keys offered", hc.Alias, hc.User, len(k.signers))
		fmt.Fprintf(&b, " (%d from the SSH agent", k.fromAgent)
		for _, f := range k.files {
			fmt.Fprintf(&b, ", %s", f)
		}
		fmt.Fprintf(&b, "): add your public key to ~%s/.ssh/authorized_keys on the server, or name the right key with IdentityFile in ~/.ssh/config", hc.User)
	}
	for _, n := range k.notes {
		fmt.Fprintf(&b, "\n  note: %s", n)
	}
	if err != nil {
		return fmt.Errorf("%s\n  (%w)", b.String(), err)
	}
	return errors.New(b.String())
}
