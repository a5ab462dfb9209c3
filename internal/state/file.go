package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"time"

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
		var tpe *time.ParseError
		pe := &ParseError{Path: path, Err: err}
		switch {
		case errors.As(err, &syn):
			pe.Line, pe.Col = position(data, syn.Offset)
		case errors.As(err, &typ):
			// The offset of an error inside a nested object is relative to
			// that object: find the value by its key path instead.
			off := valueStart(data, typ.Field, typ.Value, false)
			if off < 0 { // a map's value: Field names the map
				off = valueStart(data, typ.Field, typ.Value, true)
			}
			if off >= 0 {
				pe.Line, pe.Col = position(data, int64(off)+1)
			}
			if typ.Field == "" {
				pe.Err = fmt.Errorf("the file must hold one JSON object {...}, not a JSON %s", typ.Value)
			} else {
				pe.Err = fmt.Errorf("%s: wrong type: got JSON %s, want %s", typ.Field, typ.Value, jsonKind(typ.Type))
			}
		case errors.As(err, &tpe):
			if off := locate(data, tpe.Value); off >= 0 {
				pe.Line, pe.Col = position(data, int64(off)+1)
			}
			pe.Err = fmt.Errorf("%q is not a date: write dates as RFC 3339, e.g. 2026-11-22T05:00:00Z", tpe.Value)
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

// jsonKind says in JSON's words what a Go type takes.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[time.Time]() {
		return "a date string (RFC 3339)"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list [...]"
	case reflect.Map, reflect.Struct:
		return "an object {...}"
	}
	return t.String()
}

// valueStart returns the offset in data of the first value at the dotted
// key path field (array elements add nothing to the path, as in
// json.UnmarshalTypeError.Field; with under, also a path below it) whose
// JSON kind is the one kind names ("string", "number 1.5", ...), or -1.
func valueStart(data []byte, field, kind string, under bool) int {
	type frame struct {
		obj       bool
		path, key string // the container's path; in an object, the current key's
		expectKey bool
	}
	var stack []frame
	done := func() { // a value ended: an object wants its next key
		if n := len(stack); n > 0 && stack[n-1].obj {
			stack[n-1].expectKey = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		start := int(dec.InputOffset())
		for start < len(data) && strings.IndexByte(" \t\r\n,:", data[start]) >= 0 {
			start++
		}
		tok, err := dec.Token()
		if err != nil {
			return -1
		}
		n := len(stack)
		if n > 0 && stack[n-1].obj && stack[n-1].expectKey {
			if key, ok := tok.(string); ok {
				stack[n-1].key = strings.TrimPrefix(stack[n-1].path+"."+key, ".")
				stack[n-1].expectKey = false
				continue
			}
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:n-1]
			done()
			continue
		}
		path := ""
		if n > 0 {
			path = stack[n-1].path
			if stack[n-1].obj {
				path = stack[n-1].key
			}
		}
		var k string
		switch t := tok.(type) {
		case json.Delim:
			k = map[json.Delim]string{'{': "object", '[': "array"}[t]
		case string:
			k = "string"
		case json.Number:
			k = "number"
		case bool:
			k = "bool"
		default:
			k = "null"
		}
		if (path == field || under && strings.HasPrefix(path, field+".")) && strings.HasPrefix(kind, k) {
			return start
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{obj: true, path: path, expectKey: true})
		case json.Delim('['):
			stack = append(stack, frame{path: path})
		default:
			done()
		}
	}
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
	err := atomicfile.WriteFile(path, data, 0o640)
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("out of disk space: cannot write %s (it is left as it was): %w", path, err)
	}
	return err
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
	if err := MkdirAppEnv(filepath.Dir(path)); err != nil {
		return nil, err
	}
	var a App
	return &a, update(path, &a, func() error { return fn(&a) })
}

// RemoveApp removes the app.json at path, under the file's lock, if it
// still asks to be destroyed (App.Destroy): the last act of destroying an
// app environment. A missing file is no error.
func RemoveApp(path string) error {
	lk := flock.New(lockPath(path))
	if err := lk.Lock(); err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	defer lk.Unlock()
	var a App
	if err := Read(path, &a); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if a.Destroy == nil {
		return fmt.Errorf("%s: not removed: it no longer asks to be destroyed", path)
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	// The lock file stays: another process may be waiting on it.
	return atomicfile.SyncDir(filepath.Dir(path))
}

// UpdateServer is UpdateApp for sys/server.json.
func UpdateServer(path string, fn func(*Server) error) (*Server, error) {
	var s Server
	return &s, update(path, &s, func() error { return fn(&s) })
}

// update reads the state file at path into v (missing: v stays zero),
// calls fn, and writes v if it changed, under the file's lock.
func update(path string, v any, fn func() error) error {
	lk := flock.New(lockPath(path))
	if err := lk.Lock(); err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	defer lk.Unlock()
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		old = nil
	case err != nil:
		return err
	default:
		if err := decode(path, old, v); err != nil {
			return err
		}
	}
	if err := fn(); err != nil {
		return err
	}
	data, err := Encode(v)
	if err != nil {
		return err
	}
	if bytes.Equal(data, old) {
		return nil
	}
	return writeBytes(path, data)
}

// Decode parses a state document read from name (a path or a URL) with the
// errors of Read: position, the value and the fix.
func Decode(name string, data []byte, v any) error { return decode(name, data, v) }
