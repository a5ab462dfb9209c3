package mail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRelayNamesInjective: the attack is an app environment whose name
// joined with '-' is another's, (a, b-c) and (a-b, c). Before issue #17
// both got the Postfix transport jecloud-a-b-c and its files: the second's
// deploy overwrote the first's master.cf part, password map and status,
// so the first's mail went out through the second's provider and
// credentials (and the first's status showed the second's queue). Every
// pair of tricky names must get its own transport, log tag and files.
func TestRelayNamesInjective(t *testing.T) {
	long := strings.Repeat("x", 62)
	names := []string{"a", "b", "c", "a-b", "b-c", "a-b-c", "prod", "prod-eu", "shop", "shop-prod", "eu",
		long, long + "-y", long[:30], long[:30] + "-" + long[:31], "y", "x-y", long[:62] + "x"}
	seen := map[string]string{}
	n := 0
	for _, app := range names {
		for _, envName := range names {
			e := env{App: app, Env: envName, Dir: "/etc/postfix/jecloud"}
			who := app + "/" + envName
			for _, k := range []string{"transport " + e.Name(), "tag " + e.SyslogName(), "file " + e.masterPath(), "file " + e.saslPath(), "file " + e.infoPath()} {
				if other, ok := seen[k]; ok {
					t.Fatalf("%s and %s both get the %s", who, other, k)
				}
				seen[k] = who
			}
			// Postfix's private/NAME socket must fit sun_path (108 bytes).
			if len("private/"+e.Name()) >= 108 || strings.ContainsAny(e.Name(), ":/ \n") {
				t.Fatalf("%s: transport %q cannot be a master.cf service", who, e.Name())
			}
			n++
		}
	}
	t.Logf("summary: %d pairs of %d names, %d transports, log tags and file sets", n, len(names), n)
}

// TestLegacyRelayKept: a server set up before issue #17 has the part
// jecloud-APP-ENV.master.cf. Only the app environment its first line names
// (# APP/ENV: ...) takes it over: its listener moves to the new transport
// (the port is the same, so the old part keeps its smtp client only, for
// the mail queued for it), and the old files go once no mail waits for
// them. The other environment of that old name leaves it alone.
func TestLegacyRelayKept(t *testing.T) {
	dir := t.TempDir()
	h := &Hook{ConfDir: dir}
	r := Relay{Host: "smtp.example.com", Port: 587, User: "u", Password: "pw", TLS: TLSSecure}
	owner := env{App: "shop", Env: "prod-eu", Port: 2526, Relay: r, Dir: dir}
	other := env{App: "shop-prod", Env: "eu", Port: 2527, Relay: r, Dir: dir}
	if owner.legacyName() != other.legacyName() || owner.Name() == other.Name() {
		t.Fatalf("legacy %s %s, new %s %s", owner.legacyName(), other.legacyName(), owner.Name(), other.Name())
	}
	old := strings.ReplaceAll(owner.Master(), owner.Name(), owner.legacyName())
	for p, c := range map[string]string{owner.legacyPath(".master.cf"): old, owner.legacyPath(".sasl"): "x", owner.legacyPath(".sasl.db"): "x", owner.legacyPath(".json"): "{}"} {
		if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if owned, err := h.takeLegacy(other); err != nil || owned {
		t.Fatalf("shop-prod/eu took shop/prod-eu's old part: %v %v", owned, err)
	}
	if b, _ := os.ReadFile(owner.legacyPath(".master.cf")); string(b) != old {
		t.Fatalf("shop-prod/eu changed shop/prod-eu's old part:\n%s", b)
	}
	owned, err := h.takeLegacy(owner)
	if err != nil || !owned {
		t.Fatalf("shop/prod-eu did not take its old part: %v %v", owned, err)
	}
	os.WriteFile(owner.masterPath(), []byte(owner.Master()), 0o644)
	parts, err := readParts(dir)
	if err != nil {
		t.Fatal(err)
	}
	merged := MergeMaster("", dir, parts)
	for _, w := range []string{owner.Name() + " unix", owner.legacyName() + " unix", "hash:" + owner.legacyPath(".sasl")} {
		if !strings.Contains(merged, w) {
			t.Errorf("master.cf lacks %q:\n%s", w, merged)
		}
	}
	if c := strings.Count(merged, owner.Listen()+" inet"); c != 1 {
		t.Errorf("%d listeners on %s (Postfix cannot bind twice):\n%s", c, owner.Listen(), merged)
	}
	if err := h.dropLegacy(owner); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(left) != 1 || filepath.Base(left[0]) != owner.Name()+".master.cf" {
		t.Errorf("files left: %q", left)
	}
	t.Logf("summary: the old part of jecloud-shop-prod-eu: shop-prod/eu left it alone, shop/prod-eu kept its smtp client (one listener) and removed its 4 files when done")
}

// TestRelayUnitLimits: the attack is an app that sends mail without end
// (or a provider that refuses it, so the queue and its retries grow):
// before issue #17's last round Postfix ran with systemd's defaults, no
// MemoryMax and TasksMax of 15 % of the kernel's limit, beside the apps.
// Its unit now has a drop-in with limits like the app units'.
func TestRelayUnitLimits(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("writes root-owned files")
	}
	h := &Hook{UnitDir: t.TempDir()}
	changed, err := h.writeLimits()
	if err != nil || !changed {
		t.Fatalf("first write: %v %v", changed, err)
	}
	b, err := os.ReadFile(filepath.Join(h.UnitDir, "postfix@.service.d", LimitsDropIn))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"[Service]\n", "\nTasksMax=512\n", "\nMemoryMax=25%\n", "\nMemoryHigh=20%\n", "\nCPUWeight=50\n"} {
		if !strings.Contains(string(b), w) {
			t.Errorf("drop-in lacks %q:\n%s", w, b)
		}
	}
	if changed, _ := h.writeLimits(); changed {
		t.Error("an unchanged drop-in was rewritten (Postfix would be restarted at every deploy)")
	}
	t.Logf("summary: postfix@.service.d/%s: TasksMax=512, MemoryHigh=20%%, MemoryMax=25%%, CPUWeight=50", LimitsDropIn)
}
