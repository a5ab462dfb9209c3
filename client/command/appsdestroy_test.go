package command

import (
	"bytes"
	"errors"
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
