package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	refused := errors.New("connection refused")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		timeout  time.Duration
		answerAt int // the try that answers (0: never)
		wantErr  error
		// tries made: the timeout case counts them by the clock (10 ms apart in 50 ms)
		minTries, maxTries int
	}{
		{"answers at once", context.Background(), time.Minute, 1, nil, 1, 1},
		{"answers at the third try", context.Background(), time.Minute, 3, nil, 3, 3},
		{"never answers: the last error", context.Background(), 50 * time.Millisecond, 0, refused, 2, 5},
		{"no time at all: still one try", context.Background(), 0, 0, refused, 1, 1},
		{"context ended", canceled, time.Minute, 0, context.Canceled, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tries := 0
			err := Until(tc.ctx, tc.timeout, 10*time.Millisecond, func() error {
				tries++
				if tries == tc.answerAt {
					return nil
				}
				return refused
			})
			if err != tc.wantErr {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tries < tc.minTries || tries > tc.maxTries {
				t.Fatalf("%d tries, want %d to %d", tries, tc.minTries, tc.maxTries)
			}
		})
	}
}
