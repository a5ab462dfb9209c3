package command

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/bundle"
	"github.com/jecloud/jecloud/internal/names"
	"github.com/jecloud/jecloud/internal/state"
	"github.com/urfave/cli/v2"
)

func receiveCommand() *cli.Command {
	return &cli.Command{
		Name:      "receive",
		Usage:     "store a bundle read on stdin as version ID, after checking its hash",
		ArgsUsage: "APP ENV ID",
		Description: "Writes stdin to a temp file beside versions/ID.tar.zst while hashing its tar stream and\n" +
			"checking every entry; renames it into place only if the SHA-256 matches ID. Nothing is left\n" +
			"behind on any failure. `jepush` calls this over SSH.\n\n" +
			"With --delta-from BASE, stdin is a delta against version BASE's bundle (see `jeagent\n" +
			"manifest`): the bundle of ID is rebuilt from both, then checked and stored the same way.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "delta-from", Usage: "stdin is a delta against version `BASE`, whose bundle is here"},
		},
		Action: func(c *cli.Context) error {
			ae, id, err := appEnvVersionArgs(c)
			if err != nil {
				return err
			}
			l := layout(c)
			in := c.App.Reader
			if base := c.String("delta-from"); base != "" {
				if err := names.CheckVersion(base); err != nil {
					return err
				}
				n, err := storeDelta(l, ae, base, id, in)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "received %s as changes against %s (rebuilt bundle: %d bytes)\n", id, base, n)
				return nil
			}
			n, err := storeBundle(l, ae, id, in)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "received %s (%d bytes)\n", id, n)
			return nil
		},
	}
}

// storeBundle writes a bundle read from r as versions/ID.tar.zst, with
// its receipt, only if it checks out; nothing is left behind otherwise.
func storeBundle(l state.Layout, ae state.AppEnv, id string, r io.Reader) (int64, error) {
	return store(l, ae, id, func(f *os.File) (int64, bundle.Info, error) { return receive(f, r, id) })
}

// storeDelta rebuilds version id's bundle from base's and a delta read
// from r, and stores it like storeBundle: the rebuilt tar is checked as it
// is compressed into place, and its hash must be id.
func storeDelta(l state.Layout, ae state.AppEnv, base, id string, r io.Reader) (int64, error) {
	bf, err := os.Open(l.Bundle(ae, base))
	if err != nil {
		return 0, fmt.Errorf("changes against %s: %w", base, err)
	}
	defer bf.Close()
	lim := bundle.DefaultLimits()
	return store(l, ae, id, func(f *os.File) (int64, bundle.Info, error) {
		defer f.Close()
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			_, v, err := bundle.ApplyDelta(bf, bundle.CapReader(r, lim.MaxBundleBytes()), pw, lim)
			if err == nil && v != id {
				err = fmt.Errorf("the changes are for version %s, not %s", v, id)
			}
			pw.CloseWithError(err)
			done <- err
		}()
		cw := &countWriter{w: f}
		enc, err := bundle.NewEncoder(cw)
		if err != nil {
			return 0, bundle.Info{}, err
		}
		defer enc.Close()
		info, err := bundle.InspectTar(io.TeeReader(pr, enc), lim)
		pr.CloseWithError(errStoppedReading) // ends ApplyDelta if the check gave up first
		if derr := <-done; derr != nil && !errors.Is(derr, errStoppedReading) {
			return cw.n, info, fmt.Errorf("changes against %s refused: %w", base, derr)
		}
		if err != nil {
			return cw.n, info, fmt.Errorf("bundle rebuilt for %s refused: %w", id, err)
		}
		if info.ID != id {
			return cw.n, info, fmt.Errorf("the bundle rebuilt for %s from the changes against %s hashes to %s: push again", id, base, info.ID)
		}
		if err := enc.Close(); err != nil {
			return cw.n, info, err
		}
		if err := f.Sync(); err != nil {
			return cw.n, info, err
		}
		return cw.n, info, f.Close()
	})
}

var errStoppedReading = errors.New("the rebuilt bundle was refused")

// store writes versions/ID.tar.zst through fill, which writes and closes
// the temp file it is given and returns what it checked. The receipt is
// written, then the file renamed into place, only if fill succeeds;
// nothing is left behind otherwise.
func store(l state.Layout, ae state.AppEnv, id string, fill func(*os.File) (int64, bundle.Info, error)) (int64, error) {
	final := l.Bundle(ae, id)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return 0, err
	}
	tmp := atomicfile.TempName(final)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	n, info, err := fill(f)
	if err == nil {
		// The receipt first: a bundle in place always has one, unless
		// a person put it there.
		err = state.Write(l.Receipt(ae, id), state.Receipt{
			ContentBytes: info.ContentBytes, Entries: info.Entries, Received: state.Now()})
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
		if errors.Is(err, syscall.ENOSPC) {
			return n, fmt.Errorf("out of disk space in %s while receiving %s: free some space and push again", filepath.Dir(final), id)
		}
		return n, err
	}
	return n, atomicfile.SyncDir(filepath.Dir(final))
}

// agentForFleet is what the global state's follower needs of this agent.
type agentForFleet struct{ l state.Layout }

func (a agentForFleet) Has(ae state.AppEnv, id string) bool { return present(a.l, ae, id) }
func (a agentForFleet) Receive(ae state.AppEnv, id string, r io.Reader) error {
	_, err := storeBundle(a.l, ae, id, r)
	return err
}

// receive copies r to f, checking the bundle as it goes, and closes f.
func receive(f *os.File, r io.Reader, id string) (int64, bundle.Info, error) {
	defer f.Close()
	cw := &countWriter{w: f}
	lim := bundle.DefaultLimits()
	r = bundle.CapReader(r, lim.MaxBundleBytes()) // padding past the content
	tee := io.TeeReader(r, cw)
	info, err := bundle.Inspect(tee, lim)
	if err != nil {
		io.Copy(io.Discard, r)
		return cw.n, info, fmt.Errorf("bundle for %s refused: %w", id, err)
	}
	// The zstd reader may stop before the end of the input: keep the rest.
	if _, err := io.Copy(cw, r); err != nil {
		return cw.n, info, err
	}
	if info.ID != id {
		return cw.n, info, fmt.Errorf("bundle received for %s hashes to %s: the upload was corrupted or the ID is wrong; push again", id, info.ID)
	}
	if err := f.Sync(); err != nil {
		return cw.n, info, err
	}
	return cw.n, info, f.Close()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
