package command

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfirmDestroy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		confirm string
		set     bool
		tty     bool
		typed   string
		wantErr string // "" : confirmed
		usage   bool   // a usage error (exit 2)
		prompt  bool   // the prompt was shown
	}{
		{name: "--confirm with the app's name", confirm: "shop", set: true},
		{name: "--confirm wins over a terminal", confirm: "shop", set: true, tty: true},
		{name: "--confirm with another name", confirm: "blog", set: true, wantErr: `--confirm "blog" is not the app's name, "shop"`, usage: true},
		{name: "--confirm empty", confirm: "", set: true, wantErr: `--confirm "" is not the app's name`, usage: true},
		{name: "no terminal, no --confirm", wantErr: "give --confirm shop (the app's name)", usage: true},
		{name: "no terminal ignores stdin", typed: "shop\n", wantErr: "no terminal to ask on", usage: true},
		{name: "typed the name", tty: true, typed: "shop\n", prompt: true},
		{name: "typed with spaces", tty: true, typed: "  shop \n", prompt: true},
		{name: "typed another name", tty: true, typed: "shop2\n", wantErr: `"shop2" is not "shop"`, prompt: true},
		{name: "typed nothing (EOF)", tty: true, typed: "", wantErr: "not confirmed (EOF)", prompt: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var prompt bytes.Buffer
			err := confirmDestroy("shop", tc.confirm, tc.set, tc.tty, strings.NewReader(tc.typed), &prompt)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one with %q", err, tc.wantErr)
			}
			if tc.wantErr != "" && !strings.Contains(err.Error(), "nothing was destroyed") {
				t.Errorf("error %q does not say nothing was destroyed", err)
			}
			var ue usageError
			if got := errors.As(err, &ue); got != tc.usage {
				t.Errorf("usage error: %v, want %v", got, tc.usage)
			}
			if got := strings.Contains(prompt.String(), `type the app's name, "shop"`); got != tc.prompt {
				t.Errorf("prompt shown: %v, want %v (%q)", got, tc.prompt, prompt.String())
			}
		})
	}
}

// TestAppsDestroyCommand: apps:destroy through the CLI: refused without a
// terminal and without --confirm (nothing reaches the server), then done
// with it; a second run finds it on no server.
func TestAppsDestroyCommand(t *testing.T) {
	ctx := context.Background()
	dir, root := app(t), t.TempDir()
	local := []string{"--dir", dir, "--local", "--root", root, "--agent", fakeAgent}
	if code, out, errb := jepush(ctx, append([]string{dir, "dev"}, local[2:]...)...); code != 0 {
		t.Fatalf("push: exit %d\n%s%s", code, out, errb)
	}
	// go test's stdin is not a terminal.
	code, _, errb := jepush(ctx, append([]string{"apps:destroy", "dev"}, local...)...)
	if code != ExitUsage || !strings.Contains(errb, "give --confirm shop") {
		t.Errorf("without --confirm: exit %d\n%s", code, errb)
	}
	if calls, _ := os.ReadFile(filepath.Join(root, "calls.log")); strings.Contains(string(calls), "destroy") {
		t.Errorf("a refused apps:destroy reached the agent:\n%s", calls)
	}
	code, out, errb := jepush(ctx, append([]string{"apps:destroy", "dev", "--confirm", "shop", "--data"}, local...)...)
	if code != 0 || !strings.Contains(out, "shop/dev destroyed") {
		t.Fatalf("apps:destroy: exit %d\n%s%s", code, out, errb)
	}
	if calls, _ := os.ReadFile(filepath.Join(root, "calls.log")); !strings.Contains(string(calls), "destroy shop dev --data --by ") {
		t.Errorf("the agent was not asked to destroy with --data and --by:\n%s", calls)
	}
	code, _, errb = jepush(ctx, append([]string{"apps:destroy", "dev", "--confirm", "shop"}, local...)...)
	if code != ExitFailed || !strings.Contains(errb, "nothing to destroy") {
		t.Errorf("apps:destroy of a destroyed app: exit %d\n%s", code, errb)
	}
}
