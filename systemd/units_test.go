package systemd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jecloud/jecloud/internal/unitscore"
)

func TestUnits(t *testing.T) {
	us := Units("", "")
	if len(us) != 2 || us[0].Name != Service || us[1].Name != Timer {
		t.Fatalf("units: %v", us)
	}
	svc, timer := string(us[0].Content), string(us[1].Content)
	for _, want := range []string{"Type=oneshot", "ExecStart=/usr/local/bin/jeagent rollforward\n"} {
		if !strings.Contains(svc, want) {
			t.Errorf("service lacks %q", want)
		}
	}
	// Settings that would stop the agent from managing /var/cloud, users,
	// packages or units must stay out.
	for _, bad := range []string{"ProtectSystem=", "ProtectHome=", "NoNewPrivileges=", "ReadOnlyPaths=",
		"PrivateUsers=", "DynamicUser=", "RestrictSUIDSGID=", "MemoryDenyWriteExecute="} {
		for _, line := range strings.Split(svc, "\n") {
			if strings.HasPrefix(line, bad) {
				t.Errorf("service sets %s", line)
			}
		}
	}
	for _, want := range []string{"OnBootSec=30s", "OnUnitActiveSec=1min", "RandomizedDelaySec=10s",
		"AccuracySec=1s", "Unit=" + Service, "WantedBy=timers.target"} {
		if !strings.Contains(timer, want+"\n") {
			t.Errorf("timer lacks %q", want)
		}
	}
	if got := string(Units("/usr/bin/jeagent", "")[0].Content); !strings.Contains(got, "ExecStart=/usr/bin/jeagent rollforward\n") {
		t.Errorf("ExecStart not replaced:\n%s", got)
	}
	if got := Units(DefaultExec, ""); string(got[0].Content) != svc {
		t.Error("DefaultExec changed the service")
	}
	embedded, _ := files.ReadFile(Service)
	if got := Units(DefaultExec, "/usr/local/bin/jeagent-tick"); string(got[0].Content) != string(embedded) {
		t.Error("the embedded service is not what jeagent init writes when jeagent-tick is beside jeagent")
	}
	if got := string(Units("/usr/bin/jeagent", "/usr/bin/jeagent-tick")[0].Content); !strings.Contains(got, "ExecStart=/usr/bin/jeagent-tick --agent /usr/bin/jeagent\n") {
		t.Errorf("ExecStart with the tick:\n%s", got)
	}
	if strings.Count(svc, "ExecStart=") != 1 {
		t.Errorf("the service must start one program:\n%s", svc)
	}
}

func TestWebhookUnits(t *testing.T) {
	us := WebhookUnits("/usr/bin/jeagent", 9200, true)
	if len(us) != 2 || us[0].Name != WebhookSocket || us[1].Name != WebhookService {
		t.Fatalf("units: %v", us)
	}
	sock, svc := string(us[0].Content), string(us[1].Content)
	if !strings.Contains(sock, "\nListenStream=9200\n") || strings.Contains(sock, "9100") {
		t.Errorf("socket:\n%s", sock)
	}
	if !strings.Contains(svc, "\nExecStart=/usr/bin/jeagent webhook\n") {
		t.Errorf("service:\n%s", svc)
	}
	for _, want := range []string{"ProtectSystem=strict", "ReadWritePaths=/var/cloud", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n"} {
		if !strings.Contains(svc, want) {
			t.Errorf("service lacks %q", want)
		}
	}
}

// TestWebhookLoopback: the webhook's socket listens on loopback unless
// told to listen on all addresses (issue #17: a front-door proxy gives it
// TLS; until then, listening on all addresses is an explicit opt-in).
func TestWebhookLoopback(t *testing.T) {
	sock := string(WebhookUnits("/usr/bin/jeagent", 9200, false)[0].Content)
	if !strings.Contains(sock, "\nListenStream=127.0.0.1:9200\n") || strings.Count(sock, "ListenStream=") != 1 {
		t.Errorf("by default, the socket does not listen on loopback only:\n%s", sock)
	}
	all := string(WebhookUnits("/usr/bin/jeagent", 9200, true)[0].Content)
	if !strings.Contains(all, "\nListenStream=9200\n") || strings.Count(all, "ListenStream=") != 1 {
		t.Errorf("with listenAll, the socket does not listen on all addresses:\n%s", all)
	}
}

// TestWebhookUnitLimits: what the webhook's service may take, whoever
// sends to it, is capped by systemd too: memory and tasks.
func TestWebhookUnitLimits(t *testing.T) {
	svc := string(WebhookUnits("/usr/bin/jeagent", 9200, false)[1].Content)
	for _, want := range []string{"\nMemoryMax=", "\nTasksMax=", "\nCPUWeight=", "\nEnvironment=GOMEMLIMIT="} {
		if !strings.Contains(svc, want) {
			t.Errorf("the webhook's service has no %s", strings.TrimSpace(want))
		}
	}
}

// TestRollforwardUnitHardened: the attack is an app (or a flood of
// requests to it) that leaks memory until the kernel's OOM killer picks a
// victim: without an adjustment it may pick the roll-forward, the agent
// that would redeploy or heal the server, in the middle of a deploy. The
// unit makes the agent a late pick (OOMScoreAdjust=-500; the programs it
// starts, npm and hooks, are set back to 0 by internal/oom), and takes
// away what a root agent that installs packages, writes units and runs
// hooks has no use for: kernel and clock changes, raw I/O, reboot, swap,
// ptrace, new namespaces, address families other than UNIX, netlink and
// IP, and the capabilities for those.
func TestRollforwardUnitHardened(t *testing.T) {
	svc := string(Units("", "")[0].Content)
	settings := map[string]string{}
	for _, line := range strings.Split(svc, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			settings[k] = v
		}
	}
	var adj int
	if _, err := fmt.Sscan(settings["OOMScoreAdjust"], &adj); err != nil || adj > -100 || adj <= -1000 {
		t.Errorf("OOMScoreAdjust=%q: want a late pick for the OOM killer (-100 to -999; -1000 would make it unkillable)", settings["OOMScoreAdjust"])
	}
	for k, want := range map[string]string{
		"RestrictNamespaces":      "yes",
		"RestrictAddressFamilies": "AF_UNIX AF_NETLINK AF_INET AF_INET6",
		"SystemCallErrorNumber":   "EPERM",
	} {
		if settings[k] != want {
			t.Errorf("%s=%q, want %q", k, settings[k], want)
		}
	}
	for _, group := range []string{"@clock", "@debug", "@module", "@raw-io", "@reboot", "@swap"} {
		if !strings.HasPrefix(settings["SystemCallFilter"], "~") || !strings.Contains(settings["SystemCallFilter"]+" ", " "+group+" ") && !strings.Contains(settings["SystemCallFilter"]+" ", "~"+group+" ") {
			t.Errorf("SystemCallFilter=%q does not deny %s", settings["SystemCallFilter"], group)
		}
	}
	for _, c := range []string{"CAP_SYS_BOOT", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_TIME", "CAP_SYS_PTRACE", "CAP_BPF"} {
		if !strings.HasPrefix(settings["CapabilityBoundingSet"], "~") || !strings.Contains(settings["CapabilityBoundingSet"]+" ", c+" ") {
			t.Errorf("CapabilityBoundingSet=%q keeps %s", settings["CapabilityBoundingSet"], c)
		}
	}
	// What the agent needs stays: setuid programs and sudo in hooks (no
	// NoNewPrivileges), dpkg's chown and setuid files, useradd.
	for _, c := range []string{"CAP_CHOWN", "CAP_SETUID", "CAP_SETGID", "CAP_FOWNER", "CAP_DAC_OVERRIDE", "CAP_AUDIT_WRITE", "CAP_SYS_ADMIN"} {
		if strings.Contains(settings["CapabilityBoundingSet"], c) {
			t.Errorf("CapabilityBoundingSet=%q takes %s, which the agent needs", settings["CapabilityBoundingSet"], c)
		}
	}
}

// TestUnitExposure scores the agent's and the webhook's units with
// `systemd-analyze security --offline=yes` (the same table as the lab's
// TestLimits, without a server): the webhook, which anyone who reaches
// its port talks to, and the front door must stay "OK" (4.0 or less); the roll-forward,
// root and unsandboxed where it must be, at most 6.0 (7.9 before its
// seccomp filter, capabilities and address families).
func TestUnitExposure(t *testing.T) {
	dir := t.TempDir()
	units := append(append(Units("", ""), WebhookUnits("", DefaultWebhookPort, false)...), ProxyUnit(), HAProxyUnit())
	for _, tc := range []struct {
		name string
		max  float64
	}{{Service, 6.0}, {WebhookService, 4.0}, {ProxyService, 4.0}, {HAProxyService, 4.0}} {
		for _, u := range units {
			if u.Name == tc.name {
				os.WriteFile(filepath.Join(dir, u.Name), u.Content, 0o644)
			}
		}
		score, line, err := unitscore.Exposure(filepath.Join(dir, tc.name))
		if errors.Is(err, unitscore.ErrNoAnalyzer) {
			t.Skip(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("| %s | %s |", tc.name, line)
		if score > tc.max {
			t.Errorf("%s: exposure %s, want %.1f or less", tc.name, line, tc.max)
		}
	}
}
