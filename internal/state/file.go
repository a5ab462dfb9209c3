package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gofrs/flock"
	"github.com/jecloud/jecloud/internal/atomicfile"
)

// ParseError is a state file that does not parse: the agent reports it and
// never overwrites it.
type ParseError struct {
	Path      string
	Line, Col int
	Err       error
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %v (fix the file by hand; the agent skips it until it parses)", e.Path, e.Line, e.Col, e.Err)
	}
	return fmt.Sprintf("%s: %v (fix the file by hand; the agent skips it until it parses)", e.Path, e.Err)
}
func (e *ParseError) Unwrap() error { return e.Err }

// ValueError is a key whose value the agent cannot use.
type ValueError struct {
	Key, Value string
	Err        error
}

func (e *ValueError) Error() string { return fmt.Sprintf("%s %q: %v", e.Key, e.Value, e.Err) }
func (e *ValueError) Unwrap() error { return e.Err }

// validator is implemented by the state types that check their values.
type validator interface{ Validate() error }

// Read decodes the JSON file at path into v. A missing file leaves v as it
// is and returns an error satisfying errors.Is(err, fs.ErrNotExist). A file
// that does not parse gives a *ParseError with its line and column.
func Read(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return decode(path, data, v)
}

func decode(path string, data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return &ParseError{Path: path, Err: errors.New("the file is empty (an interrupted save?); write {} to start afresh")}
	}
	if err := json.Unmarshal(data, v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		pe := &ParseError{Path: path, Err: err}
		switch {
		case errors.As(err, &syn):
			pe.Line, pe.Col = position(data, syn.Offset)
		case errors.As(err, &typ):
			pe.Line, pe.Col = position(data, typ.Offset)
			pe.Err = fmt.Errorf("%s: wrong type: got JSON %s, want %s", typ.Field, typ.Value, typ.Type)
		}
		return pe
	}
	if val, ok := v.(validator); ok {
		if err := val.Validate(); err != nil {
			pe := &ParseError{Path: path, Err: err}
			var ve *ValueError
			if errors.As(err, &ve) {
				if off := locate(data, ve.Value); off >= 0 {
					pe.Line, pe.Col = position(data, int64(off)+1)
				}
			}
			return pe
		}
	}
	return nil
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 1 {
		off = 1
	}
	before := data[:off-1]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - 1 - bytes.LastIndexByte(before, '\n')
	return line, col
}

// locate finds a string value in the raw file, for a position to report.
func locate(data []byte, value string) int {
	q, _ := json.Marshal(value)
	return bytes.Index(data, q)
}

// Write encodes v as indented JSON and writes it to path crash-safely.
// The directory is created if needed.
func Write(path string, v any) error {
	data, err := Encode(v)
	if err != nil {
		return err
	}
	return writeBytes(path, data)
}

func writeBytes(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// Root's only: apps have no business reading the agent's state.
	return atomicfile.WriteFile(path, data, 0o640)
}

// Encode is the one format of state files: two-space indented JSON and a newline.
func Encode(v any) ([]byte, error) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// lockPath is the lock that serializes read-modify-write cycles of one
// state file between agent processes (a roll-forward and a `deploy`).
func lockPath(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".lock")
}

// UpdateApp reads the app.json at path (a missing file is an empty App),
// calls fn, and writes the result if it changed, all under the file's lock.
// If fn returns an error nothing is written. A file that does not parse is
// never overwritten.
func UpdateApp(path string, fn func(*App) error) (*App, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	lk := flock.New(lockPath(path))
	if err := lk.Lock(); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	defer lk.Unlock()
	var a App
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		old = nil
	case err != nil:
		return nil, err
	default:
		if err := decode(path, old, &a); err != nil {
			return nil, err
		}
	}
	if err := fn(&a); err != nil {
		return &a, err
	}
	data, err := Encode(&a)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(data, old) {
		return &a, nil
	}
	return &a, writeBytes(path, data)
}
