package sysd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jecloud/jecloud/internal/atomicfile"
)

// The journal holds the output of the apps' units, of the services' units
// (Redis, MongoDB) and of the roll-forward service. journald's defaults
// already bound it (SystemMaxUse: 10% of the file system, at most 4 GiB;
// SystemKeepFree: 15%, at most 4 GiB); `jeagent init` adds a lower cap
// and an age limit, in a drop-in, for the keys nobody else has set.

// JournaldDropIn is the drop-in `jeagent init` writes.
const JournaldDropIn = "/etc/systemd/journald.conf.d/jecloud.conf"

// JournaldService is the journal's unit.
const JournaldService = "systemd-journald.service"

// JournaldLimits are the [Journal] settings of the drop-in, in order.
// Sizes take no percentage in journald.conf (only bytes with K, M, G...):
// SystemKeepFree keeps its default, 15% of the file system.
var JournaldLimits = [][2]string{
	{"SystemMaxUse", "1G"},
	{"MaxRetentionSec", "1month"},
}

// JournaldSummary lists JournaldLimits as KEY=VALUE, for help texts.
func JournaldSummary() string {
	var kvs []string
	for _, kv := range JournaldLimits {
		kvs = append(kvs, kv[0]+"="+kv[1])
	}
	return strings.Join(kvs, ", ")
}

// journaldSources are the other files journald reads its settings from,
// relative to the root: an administrator's (or a vendor's) setting of one
// of JournaldLimits' keys there wins, and the drop-in leaves it out.
var journaldSources = []string{
	"etc/systemd/journald.conf",
	"run/systemd/journald.conf",
	"usr/lib/systemd/journald.conf",
	"etc/systemd/journald.conf.d/*.conf",
	"run/systemd/journald.conf.d/*.conf",
	"usr/local/lib/systemd/journald.conf.d/*.conf",
	"usr/lib/systemd/journald.conf.d/*.conf",
	"lib/systemd/journald.conf.d/*.conf",
}

// JournaldResult says what WriteJournald did.
type JournaldResult struct {
	Path    string   // the drop-in
	Written bool     // written (new or changed)
	Removed bool     // removed: every key is set elsewhere
	Set     []string // KEY=VALUE lines in the drop-in
	Left    []string // "KEY (in FILE)": set elsewhere, left alone
	// Restarted: journald restarted to read the new settings.
	Restarted bool
}

// Changed reports whether the drop-in changed.
func (r JournaldResult) Changed() bool { return r.Written || r.Removed }

func (r JournaldResult) String() string {
	var lines []string
	switch {
	case r.Written:
		lines = append(lines, fmt.Sprintf("journald: wrote %s (%s)", r.Path, strings.Join(r.Set, ", ")))
	case r.Removed:
		lines = append(lines, "journald: removed "+r.Path)
	case len(r.Set) > 0:
		lines = append(lines, fmt.Sprintf("journald: %s up to date (%s): nothing to do", r.Path, strings.Join(r.Set, ", ")))
	}
	for _, l := range r.Left {
		lines = append(lines, "journald: left to your own setting: "+l)
	}
	if r.Restarted {
		lines = append(lines, "journald: restarted "+JournaldService+" to apply the limits")
	}
	return strings.Join(lines, "\n")
}

// JournaldConf returns the drop-in for the keys of JournaldLimits that no
// file of journaldSources under root sets (nil when none is left), and the
// keys left alone with the file that sets them.
func JournaldConf(root string) (conf []byte, set, left []string, err error) {
	setBy := map[string]string{}
	own := filepath.Join(root, JournaldDropIn)
	for _, pattern := range journaldSources {
		files, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			return nil, nil, nil, err
		}
		for _, f := range files {
			if f == own {
				continue
			}
			keys, err := journalKeys(f)
			if err != nil {
				return nil, nil, nil, err
			}
			for _, k := range keys {
				if _, ok := setBy[k]; !ok {
					setBy[k] = "/" + strings.TrimPrefix(f, strings.TrimSuffix(root, "/")+"/")
				}
			}
		}
	}
	var b bytes.Buffer
	b.WriteString("# Written by `jeagent init` (docs/agent.md, \"Logs and disk\"): bounds the journal,\n" +
		"# where the apps, their services and jeagent log. Rewritten by every `jeagent init`:\n" +
		"# to change a value, set it in your own drop-in sorting after this one\n" +
		"# (zz-local.conf) or in journald.conf; jeagent then leaves that key out.\n[Journal]\n")
	for _, kv := range JournaldLimits {
		if f, ok := setBy[kv[0]]; ok {
			left = append(left, fmt.Sprintf("%s (in %s)", kv[0], f))
			continue
		}
		set = append(set, kv[0]+"="+kv[1])
		b.WriteString(kv[0] + "=" + kv[1] + "\n")
	}
	if len(set) == 0 {
		return nil, nil, left, nil
	}
	return b.Bytes(), set, left, nil
}

// journalKeys returns the keys assigned in the [Journal] section of path.
func journalKeys(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var keys []string
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
		case l[0] == '[':
			section = strings.Trim(l, "[]")
		case section == "Journal":
			if k, _, ok := strings.Cut(l, "="); ok && !slices.Contains(keys, strings.TrimSpace(k)) {
				keys = append(keys, strings.TrimSpace(k))
			}
		}
	}
	return keys, sc.Err()
}

// WriteJournald writes the drop-in under root ("/" on a server) unless it
// already has that content, or removes it when every key is set elsewhere.
func WriteJournald(root string) (JournaldResult, error) {
	r := JournaldResult{Path: filepath.Join(root, JournaldDropIn)}
	conf, set, left, err := JournaldConf(root)
	r.Set, r.Left = set, left
	if err != nil {
		return r, err
	}
	old, err := os.ReadFile(r.Path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return r, fmt.Errorf("read %s: %w", r.Path, err)
	}
	switch {
	case conf == nil && exists:
		if err := os.Remove(r.Path); err != nil {
			return r, fmt.Errorf("remove %s: %w", r.Path, err)
		}
		r.Removed = true
	case conf != nil && !bytes.Equal(old, conf):
		if err := os.MkdirAll(filepath.Dir(r.Path), 0o755); err != nil {
			return r, fmt.Errorf("create %s: %w", filepath.Dir(r.Path), err)
		}
		if err := atomicfile.WriteFile(r.Path, conf, 0o644); err != nil {
			return r, fmt.Errorf("write %s: %w", r.Path, err)
		}
		r.Written = true
	}
	return r, nil
}

// SetupJournald writes the drop-in (WriteJournald with root "/") and, when
// it changed, restarts journald if it runs: journald reads its settings
// only when it starts, and keeps the services' output streams across a
// restart (it parks them with systemd).
func SetupJournald(ctx context.Context) (JournaldResult, error) {
	r, err := WriteJournald("/")
	if err != nil || !r.Changed() {
		return r, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	b, err := dialInit(ctx)
	if err != nil {
		return r, err
	}
	defer b.Close()
	// try-restart: a journald that is not running is left so.
	ch, err := queue(ctx, JournaldService, b.conn.TryRestartUnitContext)
	if err != nil {
		return r, fmt.Errorf("systemd: restart %s to apply %s: %w", JournaldService, r.Path, err)
	}
	res, err := result(ctx, ch)
	if err != nil {
		return r, fmt.Errorf("systemd: restart %s: %w", JournaldService, err)
	}
	if res != "done" {
		return r, fmt.Errorf("systemd: restart %s: %s (see: systemctl status %s)", JournaldService, res, JournaldService)
	}
	r.Restarted = true
	return r, nil
}
