// Package storetest is the acceptance suite that every store.Bucket driver
// runs, in the manner of gocloud.dev's drivertest and thanos objstore's
// acceptance test. A driver's test calls RunConformance with a function that
// opens a new, empty bucket.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sealgate/sealgate/store"
)

// RunConformance runs the acceptance suite against buckets made by newBucket.
// Each subtest calls newBucket once and expects a new, empty bucket; the
// suite closes it when the subtest ends.
func RunConformance(t *testing.T, newBucket func(t *testing.T) store.Bucket) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, b store.Bucket)
	}{
		{"RoundTrip", testRoundTrip},
		{"Ranges", testRanges},
		{"Stat", testStat},
		{"Overwrite", testOverwrite},
		{"NotFound", testNotFound},
		{"Delete", testDelete},
		{"MultiSegmentKeys", testMultiSegmentKeys},
		{"InvalidKeys", testInvalidKeys},
		{"ReaderFailure", testReaderFailure},
		{"SizeMismatch", testSizeMismatch},
		{"CancelledContext", testCancelledContext},
		{"ListPrefix", testListPrefix},
		{"ListOrder", testListOrder},
		{"ListStartAfter", testListStartAfter},
		{"ListPaging", testListPaging},
		{"ListAfterDelete", testListAfterDelete},
		{"ConcurrentPutDifferentKeys", testConcurrentDifferentKeys},
		{"ConcurrentPutSameKey", testConcurrentSameKey},
		{"ConcurrentPutDelete", testConcurrentPutDelete},
		{"NoPartialObjects", testNoPartialObjects},
		{"LoadSwap", testLoadSwap},
		{"SwapRace", testSwapRace},
		{"SwapCounter", testSwapCounter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBucket(t)
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("Close() = %v, want nil", err)
				}
			})
			tc.fn(t, b)
		})
	}
}

// payload returns n deterministic pseudo-random bytes; different seeds give
// different contents.
func payload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5ea19a7e))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

// hideLen hides the length of a reader from drivers that look for one.
type hideLen struct{ io.Reader }

// mustPut stores data under key with its size declared, failing the test on
// error.
func mustPut(t *testing.T, b store.Bucket, key string, data []byte) {
	t.Helper()
	if err := b.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%q, %d bytes) = %v, want nil", key, len(data), err)
	}
}

// readRange reads length bytes at offset of the object under key.
func readRange(ctx context.Context, b store.Bucket, key string, offset, length int64) ([]byte, error) {
	rc, err := b.Get(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return data, err
}

// mustGet returns the whole object under key, failing the test on error.
func mustGet(t *testing.T, b store.Bucket, key string) []byte {
	t.Helper()
	data, err := readRange(t.Context(), b, key, 0, -1)
	if err != nil {
		t.Fatalf("Get(%q) = %v, want nil", key, err)
	}
	return data
}

// checkContent reports an error when the object under key is not want.
func checkContent(t *testing.T, b store.Bucket, key string, want []byte) {
	t.Helper()
	if got := mustGet(t, b, key); !bytes.Equal(got, want) {
		t.Errorf("Get(%q) = %s, want %s", key, describe(got), describe(want))
	}
}

// checkNotFound reports an error unless Stat and Get of key both fail with
// store.ErrNotFound.
func checkNotFound(t *testing.T, b store.Bucket, key string) {
	t.Helper()
	if info, err := b.Stat(t.Context(), key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Stat(%q) = %+v, %v, want ErrNotFound", key, info, err)
	}
	if data, err := readRange(t.Context(), b, key, 0, -1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(%q) = %s, %v, want ErrNotFound", key, describe(data), err)
	}
}

// listKeys returns the keys of one List call, failing the test on error.
func listKeys(t *testing.T, b store.Bucket, prefix, startAfter string, limit int) []string {
	t.Helper()
	infos, err := b.List(t.Context(), prefix, startAfter, limit)
	if err != nil {
		t.Fatalf("List(%q, %q, %d) = %v, want nil", prefix, startAfter, limit, err)
	}
	keys := make([]string, len(infos))
	for i, info := range infos {
		keys[i] = info.Key
	}
	return keys
}

// checkList reports an error when one List call does not return want.
func checkList(t *testing.T, b store.Bucket, prefix, startAfter string, limit int, want []string) {
	t.Helper()
	got := listKeys(t, b, prefix, startAfter, limit)
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("List(%q, %q, %d) = %q, want %q", prefix, startAfter, limit, got, want)
	}
}

// describe summarises a byte slice for messages: its length and, for short
// slices, its content.
func describe(p []byte) string {
	if len(p) <= 16 {
		return fmt.Sprintf("%d bytes %q", len(p), p)
	}
	return fmt.Sprintf("%d bytes %q...", len(p), p[:16])
}

// failingReader delivers data and then fails with err instead of io.EOF.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// errBoom is the error a failingReader returns in the suite.
var errBoom = errors.New("storetest: reader failed on purpose")
