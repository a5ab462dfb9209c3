package bytecount

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// shortWriter accepts at most room bytes, then fails.
type shortWriter struct{ room int }

func (w *shortWriter) Write(p []byte) (int, error) {
	if len(p) > w.room {
		n := w.room
		w.room = 0
		return n, errors.New("full")
	}
	w.room -= len(p)
	return len(p), nil
}

func TestWriter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		w       io.Writer
		writes  []string
		want    int64
		wantErr bool
	}{
		{"nothing", &bytes.Buffer{}, nil, 0, false},
		{"several writes", &bytes.Buffer{}, []string{"abc", "", "defg"}, 7, false},
		{"a short write counts what was taken", &shortWriter{room: 5}, []string{"abc", "defg"}, 5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Writer{W: tc.w}
			var err error
			for _, s := range tc.writes {
				if _, err = c.Write([]byte(s)); err != nil {
					break
				}
			}
			if (err != nil) != tc.wantErr || c.N != tc.want {
				t.Fatalf("N = %d, err %v; want %d, error %v", c.N, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{12_345_678, "11.8 MiB"},
		{5 << 30, "5.0 GiB"},
		{3 << 40, "3.0 TiB"},
	} {
		if got := Format(tc.n); got != tc.want {
			t.Errorf("Format(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
