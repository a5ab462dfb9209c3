package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jecloud/jecloud/internal/s3conf"
	"github.com/jecloud/jecloud/internal/state"
)

// Settings are the "backups" key of sys/server.json:
//
//	{"backups": {"bucket": "acme-jecloud-backups", "prefix": "jecloud", "region": "eu-west-1",
//	             "endpoint": "http://10.0.0.5:7070", "schedule": "daily", "keep": 14}}
type Settings struct {
	Bucket   string `json:"bucket"`
	Prefix   string `json:"prefix"`
	Region   string `json:"region"`
	Endpoint string `json:"endpoint"` // S3-compatible server; path-style addressing then
	Schedule string `json:"schedule"` // systemd OnCalendar: hourly, daily, weekly or an expression
	MaxAge   string `json:"max_age"`  // how old the last backup may be before status flags it
	Keep     int    `json:"keep"`     // complete backups kept per service
	// AgeRecipients, when set, encrypts every backup on the server for
	// these age public keys (age1...) before it leaves the server.
	AgeRecipients []string `json:"age_recipients,omitempty"`
	// AgeIdentityFile is the root-only file with the age identity that
	// restores decrypt with ("": sys/backup.age-key).
	AgeIdentityFile string `json:"age_identity_file,omitempty"`

	root string
}

// ErrOff is returned when server.json has no "backups" key.
var ErrOff = errors.New("backups are off")

// ReadSettings reads the backup settings of the server whose state is in root.
func ReadSettings(root string) (Settings, error) {
	var doc struct {
		Backups *Settings `json:"backups"`
	}
	if err := state.Read(state.Layout{Root: root}.ServerJSON(), &doc); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Settings{}, err
	}
	return Configured(root, doc.Backups)
}

// Configured returns the settings to use, from b, the "backups" value of
// the server.json of the server whose state is in root (nil: there is
// none), with defaults for what it leaves out.
func Configured(root string, b *Settings) (Settings, error) {
	path := state.Layout{Root: root}.ServerJSON()
	if b == nil || b.Bucket == "" {
		return Settings{}, fmt.Errorf("%w on this server: add \"backups\": {\"bucket\": \"NAME\"} to %s (docs/services.md, Backups)", ErrOff, path)
	}
	s := *b
	s.root = root
	if s.Prefix == "" {
		s.Prefix = "jecloud"
	}
	s.Prefix = strings.Trim(s.Prefix, "/")
	if s.Region == "" {
		s.Region = "us-east-1"
	}
	if s.Schedule == "" {
		s.Schedule = "daily"
	}
	if s.Keep <= 0 {
		s.Keep = 14
	}
	if _, err := s.maxAge(); err != nil {
		return Settings{}, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := s.recipients(); err != nil {
		return Settings{}, err
	}
	return s, nil
}

// maxAge is how old the newest backup may be before `status` flags it.
func (s Settings) maxAge() (time.Duration, error) {
	if s.MaxAge != "" {
		d, err := time.ParseDuration(s.MaxAge)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("backups.max_age %q: give a duration such as \"26h\"", s.MaxAge)
		}
		return d, nil
	}
	switch s.Schedule {
	case "hourly":
		return 2 * time.Hour, nil
	case "daily":
		return 26 * time.Hour, nil
	case "weekly":
		return 8 * 24 * time.Hour, nil
	}
	return 0, fmt.Errorf("backups.schedule %q is a calendar expression: also set backups.max_age (e.g. \"26h\")", s.Schedule)
}

// Stale is how old the newest backup may be before it counts as stale.
func (s Settings) Stale() time.Duration { d, _ := s.maxAge(); return d }

func (s Settings) serverJSON() string { return state.Layout{Root: s.root}.ServerJSON() }

// CredentialsFile holds the S3 keys when the server has no instance role.
func CredentialsFile(root string) string { return filepath.Join(root, "sys", "backup.env") }

// client makes the S3 client: the AWS SDK's default credential chain, or
// the keys of sys/backup.env when that file exists (it must be root-only).
func (s Settings) client(ctx context.Context) (*s3.Client, error) {
	return s3conf.Client(ctx, s.Region, s.Endpoint, CredentialsFile(s.root))
}
