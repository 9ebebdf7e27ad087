package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/sealgate/sealgate/store"
)

// checkFailedPut reports an error unless the object under key is exactly
// previous after a failed Put, or missing when previous is nil.
func checkFailedPut(t *testing.T, b store.Bucket, key string, previous []byte) {
	t.Helper()
	if previous != nil {
		checkContent(t, b, key, previous)
		return
	}
	checkNotFound(t, b, key)
	checkList(t, b, key, "", 0, nil)
}

func testReaderFailure(t *testing.T, b store.Bucket) {
	for _, n := range []int{0, 1000, 300 << 10} {
		for _, known := range []bool{true, false} {
			for _, existing := range []bool{false, true} {
				name := fmt.Sprintf("delivered=%d-known=%t-existing=%t", n, known, existing)
				t.Run(name, func(t *testing.T) {
					key := "readerfail/" + name
					var previous []byte
					if existing {
						previous = payload(2000, 1)
						mustPut(t, b, key, previous)
					}
					size := int64(-1)
					if known {
						size = 1 << 20
					}
					r := &failingReader{data: payload(n, 2), err: errBoom}
					if err := b.Put(t.Context(), key, r, size); !errors.Is(err, errBoom) {
						t.Errorf("Put(%q) with a failing reader = %v, want an error wrapping %v", key, err, errBoom)
					}
					checkFailedPut(t, b, key, previous)
				})
			}
		}
	}
}

func testSizeMismatch(t *testing.T, b store.Bucket) {
	cases := []struct{ declared, actual int }{
		{10, 9}, {10, 11}, {0, 1}, {1, 0}, {300 << 10, 300<<10 + 1}, {1 << 20, 300 << 10},
	}
	for _, c := range cases {
		for _, existing := range []bool{false, true} {
			name := fmt.Sprintf("declared=%d-actual=%d-existing=%t", c.declared, c.actual, existing)
			t.Run(name, func(t *testing.T) {
				key := "sizemismatch/" + name
				var previous []byte
				if existing {
					previous = payload(c.declared, 1)
					mustPut(t, b, key, previous)
				}
				r := hideLen{bytes.NewReader(payload(c.actual, 2))}
				err := b.Put(t.Context(), key, r, int64(c.declared))
				if !errors.Is(err, store.ErrSizeMismatch) {
					t.Errorf("Put(%q, size %d) of %d bytes = %v, want ErrSizeMismatch", key, c.declared, c.actual, err)
				}
				checkFailedPut(t, b, key, previous)
			})
		}
	}
}

// cancellingReader delivers data in chunks and calls cancel after the first.
type cancellingReader struct {
	data   []byte
	cancel context.CancelFunc
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 64<<10)], r.data)
	r.data = r.data[n:]
	r.cancel()
	return n, nil
}

func testCancelledContext(t *testing.T, b store.Bucket) {
	t.Run("before", func(t *testing.T) {
		const key = "cancel/before"
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := b.Put(ctx, key, bytes.NewReader([]byte("data")), 4)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Put(%q) with a cancelled context = %v, want context.Canceled", key, err)
		}
		checkFailedPut(t, b, key, nil)
	})

	for _, known := range []bool{true, false} {
		for _, existing := range []bool{false, true} {
			name := fmt.Sprintf("midway-known=%t-existing=%t", known, existing)
			t.Run(name, func(t *testing.T) {
				key := "cancel/" + name
				var previous []byte
				if existing {
					previous = payload(1000, 1)
					mustPut(t, b, key, previous)
				}
				data := payload(2<<20, 2)
				size := int64(-1)
				if known {
					size = int64(len(data))
				}
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				err := b.Put(ctx, key, &cancellingReader{data: data, cancel: cancel}, size)
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Put(%q) cancelled midway = %v, want context.Canceled", key, err)
				}
				checkFailedPut(t, b, key, previous)
			})
		}
	}

	t.Run("other operations", func(t *testing.T) {
		const key = "cancel/stored"
		mustPut(t, b, key, []byte("stored"))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := b.Get(ctx, key, 0, -1); err == nil {
			t.Errorf("Get(%q) with a cancelled context = nil error, want an error", key)
		}
		if _, err := b.Stat(ctx, key); err == nil {
			t.Errorf("Stat(%q) with a cancelled context = nil error, want an error", key)
		}
		if _, err := b.List(ctx, "", "", 0); err == nil {
			t.Errorf("List with a cancelled context = nil error, want an error")
		}
		if err := b.Delete(ctx, key); err == nil {
			t.Errorf("Delete(%q) with a cancelled context = nil error, want an error", key)
		}
	})
}
