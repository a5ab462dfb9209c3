package state

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// Extra holds the keys of a JSON object that its Go type does not name, so
// that a rewrite keeps what people (or newer agents) put there.
type Extra map[string]json.RawMessage

// decodeKeep decodes data into v (a pointer to a struct type without custom
// JSON methods) and returns the keys v's fields do not name. As for
// encoding/json, a key names a field whatever its case: "Current_Version"
// sets current_version and is not kept besides (a rewrite would write both,
// and the stale one would win on the next read).
func decodeKeep(data []byte, v any) (Extra, error) {
	if err := json.Unmarshal(data, v); err != nil {
		return nil, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return nil, err
	}
	known := jsonKeys(reflect.TypeOf(v).Elem())
	var extra Extra
	for k, raw := range all {
		if !slices.ContainsFunc(known, func(name string) bool { return strings.EqualFold(name, k) }) {
			if extra == nil {
				extra = Extra{}
			}
			extra[k] = raw
		}
	}
	return extra, nil
}

// encodeKeep encodes v and appends the extra keys, sorted, after its own.
func encodeKeep(v any, extra Extra) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	buf.Write(b[:len(b)-1]) // without the closing brace
	for _, k := range keys {
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(extra[k])
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// jsonKeys lists the keys t's fields are written under.
func jsonKeys(t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		keys = append(keys, name)
	}
	return keys
}

// DecodeKeep is decodeKeep for state documents kept elsewhere (the global
// state on S3): v's unknown keys are returned to be written back.
func DecodeKeep(data []byte, v any) (Extra, error) { return decodeKeep(data, v) }

// EncodeKeep is encodeKeep for state documents kept elsewhere.
func EncodeKeep(v any, extra Extra) ([]byte, error) { return encodeKeep(v, extra) }
