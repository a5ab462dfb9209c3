package gitdeploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/jecloud/jecloud/internal/oom"
	"github.com/jecloud/jecloud/internal/shellquote"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/jecloud/jecloud/internal/versions"
)

// Builder fetches commits and bundles them for the roll-forward.
type Builder struct {
	Layout state.Layout
	// Git is the git program ("git" if empty).
	Git string
	// SSH is the ssh program git runs ("ssh" if empty).
	SSH string
	Log io.Writer
	// Reserve is the free space a build leaves on the disk (versions.Store).
	Reserve int64
}

// Build fetches the branch of g's repository with ae's deploy key and
// builds its tip on the git server: the commit asked for (that of the push
// the webhook accepted) if it is still the tip, else the tip, saying so in
// the log. A signed delivery of an old commit, replayed later, thus cannot
// bring that commit back. It checks the tip out with its submodules and
// stores its bundle as versions/ID.tar.zst, made by the bundler of `jepush
// bundle`: the same tree gives the same ID. It returns the commit built and
// the version ID. Nothing half-made is left in versions/; a checkout left
// by an interrupted build is removed by the next one.
func (b *Builder) Build(ctx context.Context, ae state.AppEnv, g state.Git, commit string) (built, id string, err error) {
	if !IsCommit(commit) {
		return "", "", fmt.Errorf("%q is not a commit ID", commit)
	}
	if _, err := Endpoint(g.Repository); err != nil {
		return "", "", err
	}
	if err := CheckBranch(g.Branch); err != nil {
		return "", "", err
	}
	f := FilesOf(b.Layout, ae)
	tip, err := b.fetchTip(ctx, f, g)
	if err != nil {
		return "", "", err
	}
	if tip != commit {
		b.logf("commit %s is not the tip of branch %s on the git server: building its tip %s (the delivery was replayed, or a newer push overtook it)\n",
			commit[:12], g.Branch, tip[:12])
	}
	// Checkouts of interrupted builds.
	old, _ := filepath.Glob(filepath.Join(f.Dir, ".build-*"))
	for _, d := range old {
		os.RemoveAll(d)
	}
	b.git(ctx, f, f.Mirror(), "worktree", "prune")

	var rnd [6]byte
	rand.Read(rnd[:])
	work := filepath.Join(f.Dir, ".build-"+hex.EncodeToString(rnd[:]))
	defer func() {
		b.git(context.Background(), f, f.Mirror(), "worktree", "remove", "--force", work)
		os.RemoveAll(work)
	}()
	if err := b.git(ctx, f, f.Mirror(), "worktree", "add", "--detach", "--force", work, tip); err != nil {
		return "", "", fmt.Errorf("check out %s: %w", tip[:12], err)
	}
	if _, err := os.Stat(filepath.Join(work, ".gitmodules")); err == nil {
		if err := b.git(ctx, f, work, "submodule", "update", "--init", "--recursive"); err != nil {
			return "", "", fmt.Errorf("submodules of %s (the deploy key must be allowed on their repositories too): %w", tip[:12], err)
		}
	}
	// Stored as `jeagent receive` leaves a bundle, with its receipt, so
	// that the deployment does not verify it again.
	id, err = versions.Store{Layout: b.Layout, Reserve: b.Reserve}.Put(ae, work)
	return tip, id, err
}

func (b *Builder) logf(format string, args ...any) {
	if b.Log != nil {
		fmt.Fprintf(b.Log, format, args...)
	}
}

// fetchTip fetches the branch into the environment's bare mirror, always
// (a commit already there may no longer be the branch's), and returns the
// commit that is its tip on the git server.
func (b *Builder) fetchTip(ctx context.Context, f Files, g state.Git) (string, error) {
	m := f.Mirror()
	if _, err := os.Stat(filepath.Join(m, "HEAD")); err != nil {
		os.RemoveAll(m)
		if err := b.git(ctx, f, "", "init", "--quiet", "--bare", m); err != nil {
			return "", err
		}
	}
	if err := b.git(ctx, f, m, "config", "remote.origin.url", g.Repository); err != nil {
		return "", err
	}
	remote := "refs/remotes/origin/" + g.Branch
	if err := b.git(ctx, f, m, "fetch", "--quiet", "--no-tags", "origin", "+refs/heads/"+g.Branch+":"+remote); err != nil {
		return "", fmt.Errorf("fetch branch %s of %s: %w", g.Branch, g.Repository, err)
	}
	var out bytes.Buffer
	if err := b.gitOut(ctx, f, m, &out, "rev-parse", "--verify", "--quiet", remote+"^{commit}"); err != nil {
		return "", fmt.Errorf("branch %s of %s: no commit after the fetch: %w", g.Branch, g.Repository, err)
	}
	tip := strings.TrimSpace(out.String())
	if !IsCommit(tip) {
		return "", fmt.Errorf("branch %s of %s: git rev-parse gave %q, not a commit ID", g.Branch, g.Repository, tip)
	}
	return tip, nil
}

// git runs git in dir ("" for none) with the deploy key and the recorded
// host keys, never asking anything.
func (b *Builder) git(ctx context.Context, f Files, dir string, args ...string) error {
	return b.gitOut(ctx, f, dir, nil, args...)
}

// gitOut is git with its standard output to stdout (nil: none).
func (b *Builder) gitOut(ctx context.Context, f Files, dir string, stdout io.Writer, args ...string) error {
	prog := b.Git
	if prog == "" {
		prog = "git"
	}
	ssh := b.SSH
	if ssh == "" {
		ssh = "ssh"
	}
	if dir != "" {
		args = append([]string{"-C", dir}, args...)
	}
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append(os.Environ(),
		"GIT_TERMINAL_PROMPT=0",
		"GIT_SSH_COMMAND="+strings.Join([]string{ssh, "-F", "/dev/null", "-i", shellquote.Quote(f.Key()),
			"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
			"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + shellquote.Quote(f.KnownHosts()),
			"-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=30"}, " "),
		// Submodules over file:// or other transports than SSH are refused.
		"GIT_ALLOW_PROTOCOL=ssh",
	)
	cmd.Stdout = stdout
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if b.Log != nil {
		cmd.Stderr = io.MultiWriter(&stderr, b.Log)
	}
	if err := oom.Run(cmd); err != nil { // a build is not protected from the OOM killer with the agent
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndex(msg, "\n"); i >= 0 {
			msg = msg[i+1:]
		}
		return fmt.Errorf("git %s: %w: %s", args[len(argsPrefix(dir)):][0], err, msg)
	}
	return nil
}

func argsPrefix(dir string) []string {
	if dir != "" {
		return []string{"-C", dir}
	}
	return nil
}
