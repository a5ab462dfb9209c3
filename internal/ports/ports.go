// Package ports gives each app environment's services (its web process,
// its Redis, ...) a TCP port on the server, once and for good, recorded in
// APP/ENV/ports.json so that people can read (and, with care, edit) it.
// Roll-forward runs one at a time, so two app environments never race.
package ports

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/jecloud/jecloud/internal/atomicfile"
	"github.com/jecloud/jecloud/internal/state"
)

// FileName is the record's name in the app environment's directory.
const FileName = "ports.json"

// Allocate returns the port of service in the app environment at dir
// (ROOT/APP/ENV): the recorded one, else the lowest from base up that no
// app environment under root has recorded for any service.
func Allocate(root, dir, service string, base int) (int, error) {
	path := filepath.Join(dir, FileName)
	mine, err := read(path)
	if err != nil {
		return 0, err
	}
	if p, ok := mine[service]; ok {
		return p, nil
	}
	used := map[int]bool{}
	files, _ := filepath.Glob(filepath.Join(root, "*", "*", FileName))
	for _, f := range files {
		m, err := read(f)
		if err != nil {
			return 0, err
		}
		for _, p := range m {
			used[p] = true
		}
	}
	port := base
	for used[port] {
		port++
	}
	if port > 65535 {
		return 0, fmt.Errorf("no free port from %d up for %s", base, service)
	}
	mine[service] = port
	b, _ := json.MarshalIndent(mine, "", "  ")
	if err := atomicfile.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return 0, err
	}
	return port, nil
}

func read(path string) (map[string]int, error) {
	m := map[string]int{}
	err := state.Read(path, &m)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	var pe *state.ParseError
	if errors.As(err, &pe) {
		return nil, fmt.Errorf("%w; want {\"web\": 5000, ...}, or remove the file", err)
	}
	if err != nil {
		return nil, err
	}
	for s, p := range m {
		if p < 1 || p > 65535 {
			return nil, fmt.Errorf("%s: %q: port %d: give 1 to 65535", path, s, p)
		}
	}
	return m, nil
}

// Lookup returns the recorded port of service in the app environment at
// dir (ROOT/APP/ENV), or an error saying the service is not set up there.
func Lookup(dir, service string) (int, error) {
	path := filepath.Join(dir, FileName)
	m, err := read(path)
	if err != nil {
		return 0, err
	}
	p, ok := m[service]
	if !ok {
		return 0, fmt.Errorf("%s has no port for %s: the service is not set up for this app environment (deploy a release that declares it)", path, service)
	}
	return p, nil
}
