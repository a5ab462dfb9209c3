package push

import (
	"reflect"

	"github.com/jecloud/jecloud/internal/lines"
)

// printable rewrites, in place, every string that v (a pointer to a
// document decoded from a server's JSON: status, ps) holds, through
// lines.Printable, so that none of its fields can drive the user's
// terminal when it is printed. json.RawMessage fields are left as they
// are: they are printed only as JSON, which escapes control characters.
func printable(v any) {
	walk(reflect.ValueOf(v))
}

func walk(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walk(v.Elem())
		}
	case reflect.Interface:
		// What an interface holds cannot be set in place: walk a copy and
		// put it back.
		if !v.IsNil() && v.CanSet() {
			e := reflect.New(v.Elem().Type()).Elem()
			e.Set(v.Elem())
			walk(e)
			v.Set(e)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				walk(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 { // []byte, json.RawMessage
			return
		}
		for i := 0; i < v.Len(); i++ {
			walk(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			walk(e)
			if k.Kind() == reflect.String && lines.Printable(k.String()) != k.String() {
				v.SetMapIndex(k, reflect.Value{}) // the key too
				k = reflect.ValueOf(lines.Printable(k.String())).Convert(k.Type())
			}
			v.SetMapIndex(k, e)
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(lines.Printable(v.String()))
		}
	}
}
