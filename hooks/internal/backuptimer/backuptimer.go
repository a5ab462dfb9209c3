// Package backuptimer schedules the backups of a data service's instance:
// jecloud-APP_ENV_SERVICE-backup.service runs `jeagent backup APP ENV
// SERVICE`, started by the .timer of the same name on the schedule of
// sys/server.json's "backups" key. The Redis and MongoDB hooks call Ensure
// at the end of their install phase.
package backuptimer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"
	"github.com/jecloud/jecloud/internal/backup"
	"github.com/jecloud/jecloud/internal/hook"
	"github.com/jecloud/jecloud/internal/sysd"
)

// Names returns the service and timer unit names of an instance's backups.
func Names(app, env, service string) (svc, timer string) {
	base := sysd.AppPrefix(app, env) + service + "-backup"
	return base + ".service", base + ".timer"
}

// Units renders the service and timer of the scheduled backups of the
// instance of service in req's app environment. exe is the jeagent binary.
func Units(exe string, req hook.Request, service string, s backup.Settings) (svc, timer string) {
	o := sysd.Opt
	root, app, env, dir := req.Root, req.App, req.Env, req.AppDir
	sopts := []*unit.UnitOption{
		o("Unit", "Description", fmt.Sprintf("JeCloud backup of %s/%s %s to S3", app, env, service)),
		o("Unit", "Documentation", "https://github.com/jecloud/jecloud/blob/main/docs/services.md#backups"),
		o("Unit", "After", "network-online.target "+sysd.AppPrefix(app, env)+service+".service"),
		o("Unit", "Wants", "network-online.target"),
		o("Service", "Type", "oneshot"),
		o("Service", "ExecStart", strings.Join([]string{exe, "--root", root, "backup", app, env, service}, " ")),
		o("Service", "SyslogIdentifier", "jeagent-backup"),
		o("Service", "Environment", "HOME=/root"),
		o("Service", "UMask", "0077"),
		o("Service", "TimeoutStartSec", "6h"),
		// A backup must not slow the apps down.
		o("Service", "Nice", "10"),
		o("Service", "IOSchedulingClass", "idle"),
		// jeagent streams the dump through zstd to S3 in parts: a few
		// threads and tens of MB. The limits keep a stuck or runaway
		// backup from taking the server; CPUWeight 20 gives the apps five
		// times its share when the CPU is short. No IPAddressDeny of the
		// metadata service: on EC2 the backup's S3 credentials come from it
		// (the instance's IAM role).
		o("Service", "TasksMax", "64"),
		o("Service", "MemoryHigh", "20%"),
		o("Service", "MemoryMax", "25%"),
		o("Service", "CPUWeight", "20"),
		// It reads the instance and writes its temp file and app.json there;
		// it reads root's AWS configuration if there is one.
		o("Service", "ProtectSystem", "strict"),
		o("Service", "ReadWritePaths", dir),
		o("Service", "ProtectHome", "read-only"),
		o("Service", "PrivateTmp", "yes"),
		o("Service", "PrivateDevices", "yes"),
		o("Service", "NoNewPrivileges", "yes"),
		o("Service", "ProtectKernelTunables", "yes"),
		o("Service", "ProtectKernelModules", "yes"),
		o("Service", "ProtectControlGroups", "yes"),
		o("Service", "RestrictSUIDSGID", "yes"),
		o("Service", "LockPersonality", "yes"),
		// jeagent (Go) and redis-cli talk TCP to the instance on loopback
		// and HTTPS to S3, as root over root's files (file capabilities
		// kept in case an instance's file is its user's): nothing else.
		o("Service", "CapabilityBoundingSet", "CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_CHOWN CAP_FOWNER"),
		o("Service", "ProtectKernelLogs", "yes"),
		o("Service", "ProtectClock", "yes"),
		o("Service", "ProtectHostname", "yes"),
		o("Service", "RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
		o("Service", "RestrictNamespaces", "yes"),
		o("Service", "RestrictRealtime", "yes"),
		o("Service", "MemoryDenyWriteExecute", "yes"),
		o("Service", "SystemCallArchitectures", "native"),
		o("Service", "SystemCallFilter", "@system-service"),
		o("Service", "SystemCallErrorNumber", "EPERM"),
	}
	topts := []*unit.UnitOption{
		o("Unit", "Description", fmt.Sprintf("JeCloud backups of %s/%s %s (%s)", app, env, service, s.Schedule)),
		o("Timer", "OnCalendar", s.Schedule),
		// A backup missed while the server was off runs when it is back.
		o("Timer", "Persistent", "true"),
		// Spread the servers' backups over a few minutes.
		o("Timer", "RandomizedDelaySec", "10min"),
		o("Install", "WantedBy", "timers.target"),
	}
	return sysd.Serialize(sopts), sysd.Serialize(topts)
}

// Ensure installs and starts the timer of the backups of the instance of
// service in req's app environment when server.json (req.Server) turns
// backups on, and removes it when it does not.
func Ensure(ctx context.Context, unitDir, exe string, req hook.Request, service string, log io.Writer) error {
	app, env := req.App, req.Env
	svcName, timerName := Names(app, env, service)
	// The timer named before issue #17 goes; the new one replaces it.
	legacy := []string{service + "-backup.timer", service + "-backup.service"}
	if err := sysd.RetireLegacyApp(ctx, unitDir, app, env, legacy, log); err != nil {
		return err
	}
	var b *backup.Settings
	if err := req.Settings("backups", &b); err != nil {
		return err
	}
	s, err := backup.Configured(req.Root, b)
	if errors.Is(err, backup.ErrOff) {
		return remove(ctx, unitDir, svcName, timerName, log)
	}
	if err != nil {
		return err
	}
	if err := checkCalendar(s.Schedule, req.ServerJSON()); err != nil {
		return err
	}
	svc, timer := Units(exe, req, service, s)
	c1, err := sysd.WriteUnit(unitDir, svcName, svc)
	if err != nil {
		return err
	}
	c2, err := sysd.WriteUnit(unitDir, timerName, timer)
	if err != nil {
		return err
	}
	sd, closeFn, err := sysd.OpenReloaded(ctx, c1 || c2)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := sd.Enable(ctx, []string{timerName}); err != nil {
		return err
	}
	start := sd.Start
	if c2 {
		start = sd.Restart // a new schedule
	}
	if err := start(ctx, timerName); err != nil {
		return fmt.Errorf("starting %s: %w", timerName, err)
	}
	if c1 || c2 {
		fmt.Fprintf(log, "backups of %s/%s %s: %s (%s), kept %d, to s3://%s/%s/\n", app, env, service, s.Schedule, timerName, s.Keep, s.Bucket, s.Prefix)
	}
	return nil
}

// checkCalendar refuses a schedule systemd would not understand, naming
// the file to fix (serverJSON), rather than leaving a timer that never fires.
func checkCalendar(expr, serverJSON string) error {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		return nil
	}
	out, err := exec.Command(analyze, "calendar", expr).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: \"backups\": \"schedule\" %q is not a systemd calendar expression (%s): use hourly, daily, weekly or for example \"*-*-* 03:30\"",
			serverJSON, expr, strings.TrimSpace(string(out)))
	}
	return nil
}

func remove(ctx context.Context, unitDir, svcName, timerName string, log io.Writer) error {
	tp := filepath.Join(unitDir, timerName)
	if _, err := os.Stat(tp); err != nil {
		return nil
	}
	sd, closeFn, err := sysd.Open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	sd.Stop(ctx, timerName)
	if err := sd.Disable(ctx, []string{timerName}); err != nil {
		return err
	}
	for _, name := range []string{timerName, svcName} {
		if err := os.Remove(filepath.Join(unitDir, name)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	fmt.Fprintf(log, "backups are off: %s removed\n", timerName)
	return sd.Reload(ctx)
}
