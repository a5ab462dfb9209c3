package remote

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestResolve(t *testing.T) {
	home := t.TempDir()
	cfg := filepath.Join(home, ".ssh", "config")
	os.MkdirAll(filepath.Dir(cfg), 0o700)
	os.WriteFile(cfg, []byte(`
Host web1
    HostName 10.0.0.5
    User deploy
    Port 2222
    IdentityFile ~/.ssh/deploy_%r
    ProxyJump bastion,deploy@inner:2200
    UserKnownHostsFile ~/.ssh/kh1 %d/kh2
    ServerAliveInterval 5
    ServerAliveCountMax 2

Host bastion
    HostName bastion.example.com

Host legacy
    ProxyCommand nc %h %p

Host lax
    StrictHostKeyChecking no
    ConnectTimeout 3
    IdentityAgent none

Host badport
    Port 70000
    ProxyCommand nc %h %p

Host badtimeout
    ConnectTimeout soon

Host badalive
    ServerAliveInterval -1

Host badcount
    ServerAliveCountMax 0

Host tokens
    HostName %h.example.com
    User ops
    IdentityFile none
    GlobalKnownHostsFile /etc/kh_%n
    HostKeyAlias alias-%h
    IdentityAgent ~/agent-%r@%h:%p

Match exec "test -f /nonexistent" user bob
    User matched-exec

Match originalhost other
    User matched-originalhost

Host *
    User fallback
`), 0o600)
	o := SSHOptions{Home: home, SystemConfigFile: "none", LocalUser: "me", AgentSocket: "/tmp/agent.sock"}
	cs, err := o.loadConfigs()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dest  string
		check func(t *testing.T, h *hostConfig)
		err   string
	}{
		{dest: "web1", check: func(t *testing.T, h *hostConfig) {
			want := &hostConfig{
				Alias: "web1", HostName: "10.0.0.5", Port: 2222, User: "deploy",
				IdentityFiles: []string{home + "/.ssh/deploy_deploy"}, ExplicitIdentities: true,
				ProxyJump:       []string{"bastion", "deploy@inner:2200"},
				KnownHostsFiles: []string{home + "/.ssh/kh1", home + "/kh2", "/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"},
				AgentSocket:     "/tmp/agent.sock", ConnectTimeout: DefaultConnectTimeout,
				KeepaliveInterval: 5 * time.Second, KeepaliveCountMax: 2,
			}
			if !reflect.DeepEqual(h, want) {
				t.Errorf("got  %+v\nwant %+v", h, want)
			}
		}},
		{dest: "root@web1:22", check: func(t *testing.T, h *hostConfig) {
			if h.User != "root" || h.Port != 22 || h.Addr() != "10.0.0.5:22" {
				t.Errorf("the destination's user and port must win: %+v", h)
			}
		}},
		{dest: "other", check: func(t *testing.T, h *hostConfig) {
			if h.HostName != "other" || h.Port != 22 || h.User != "fallback" || len(h.ProxyJump) != 0 {
				t.Errorf("got %+v", h)
			}
			wantIDs := []string{home + "/.ssh/id_ed25519", home + "/.ssh/id_ecdsa", home + "/.ssh/id_rsa"}
			if !reflect.DeepEqual(h.IdentityFiles, wantIDs) || h.ExplicitIdentities {
				t.Errorf("default identities: %v", h.IdentityFiles)
			}
			if h.KnownHostsFiles[0] != home+"/.ssh/known_hosts" {
				t.Errorf("known hosts: %v", h.KnownHostsFiles)
			}
			if h.KeepaliveInterval != DefaultKeepaliveInterval || h.KeepaliveCountMax != DefaultKeepaliveCountMax {
				t.Errorf("keepalive defaults: %+v", h)
			}
		}},
		{dest: "lax", check: func(t *testing.T, h *hostConfig) {
			if !h.NotStrict || h.ConnectTimeout != 3*time.Second || h.AgentSocket != "" {
				t.Errorf("got %+v", h)
			}
		}},
		{dest: "tokens", check: func(t *testing.T, h *hostConfig) {
			want := &hostConfig{
				Alias: "tokens", HostName: "tokens.example.com", Port: 22, User: "ops", ExplicitIdentities: true,
				KnownHostsFiles: []string{home + "/.ssh/known_hosts", home + "/.ssh/known_hosts2", "/etc/kh_tokens"},
				HostKeyAlias:    "alias-%h",
				AgentSocket:     home + "/agent-ops@tokens.example.com:22", ConnectTimeout: DefaultConnectTimeout,
				KeepaliveInterval: DefaultKeepaliveInterval, KeepaliveCountMax: DefaultKeepaliveCountMax,
			}
			if !reflect.DeepEqual(h, want) {
				t.Errorf("got  %+v\nwant %+v", h, want)
			}
		}},
		{dest: "legacy", err: "ProxyCommand"},
		// The port is read (and refused) before ProxyCommand.
		{dest: "badport", err: `ssh config: Port "70000" for badport is not a port number`},
		{dest: "badtimeout", err: `ssh config: ConnectTimeout for badtimeout: "soon" is not a number of seconds`},
		{dest: "badalive", err: `ssh config: ServerAliveInterval for badalive: "-1" is not a number of seconds`},
		{dest: "badcount", err: `ssh config: ServerAliveCountMax "0" for badcount is not a positive number`},
	} {
		d, err := ParseDest(tc.dest)
		if err != nil {
			t.Fatal(err)
		}
		h, err := o.resolve(cs, d)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.dest, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.dest, err)
			continue
		}
		t.Run(tc.dest, func(t *testing.T) { tc.check(t, h) })
	}
}
