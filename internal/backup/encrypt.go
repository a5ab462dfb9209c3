package backup

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"filippo.io/age"
)

// Encrypted backups use age (filippo.io/age, by the Go security lead who
// designed the format): a small, well-reviewed standard with a command line
// of its own, so that a backup can also be opened by hand with
// `age -d -i KEY FILE | zstd -d`. The server holds only the recipients
// (public keys); the identity that decrypts is needed for restores only,
// and may live off the server until then.

// ageSuffix ends the key of an encrypted backup: NAME.zst.age.
const ageSuffix = ".age"

// recipients parses the "age_recipients" setting (nil: not encrypted).
func (s Settings) recipients() ([]age.Recipient, error) {
	if len(s.AgeRecipients) == 0 {
		return nil, nil
	}
	var out []age.Recipient
	for _, r := range s.AgeRecipients {
		rc, err := age.ParseX25519Recipient(strings.TrimSpace(r))
		if err != nil {
			return nil, fmt.Errorf("%s: backups.age_recipients %q: %w: give the public key that `age-keygen` printed (age1...)",
				s.serverJSON(), r, err)
		}
		out = append(out, rc)
	}
	return out, nil
}

// IdentityFile is where restores look for the age identity (the private
// key of a recipient) unless "age_identity_file" names another file.
func IdentityFile(root string) string { return filepath.Join(root, "sys", "backup.age-key") }

// identities reads the identity file for a restore of an encrypted backup.
// It must be readable by root only: it opens every backup.
func (s Settings) identities() ([]age.Identity, error) {
	path := s.AgeIdentityFile
	if path == "" {
		path = IdentityFile(s.root)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("this backup is encrypted (age): put the identity (the AGE-SECRET-KEY-... line that `age-keygen` wrote) "+
			"in %s, mode 0600, owned by root, or name its file in backups.age_identity_file: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %04o): it opens every backup: run `chmod 600 %s`", path, fi.Mode().Perm(), path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != 0 && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("%s belongs to uid %d: the identity that opens every backup must be root's: run `chown root %s`", path, st.Uid, path)
	}
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ids, nil
}

// encryptTo returns a writer that encrypts to rs into w (w itself when rs
// is empty); Close finishes the encryption.
func encryptTo(w io.Writer, rs []age.Recipient) (io.WriteCloser, error) {
	if len(rs) == 0 {
		return nopCloser{w}, nil
	}
	return age.Encrypt(w, rs...)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
