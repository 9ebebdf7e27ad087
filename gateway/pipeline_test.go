package gateway

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"go.uber.org/goleak"
)

// jitterReader returns its data in reads of random sizes, then err.
type jitterReader struct {
	data []byte
	err  error
}

func (r *jitterReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data[:min(len(r.data), 1+rand.IntN(300000))])
	r.data = r.data[n:]
	return n, nil
}

func TestReadAheadCarriesBytesInOrder(t *testing.T) {
	data := make([]byte, 3*pipeBlock*pipeDepth+12345)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	r := readAhead(io.NopCloser(&jitterReader{data: data, err: io.EOF}))
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read-ahead delivered %d bytes, %v; want the %d of the source in order", len(got), err, len(data))
	}
}

func TestReadAheadPassesTheSourceError(t *testing.T) {
	cause := errors.New("store connection reset")
	r := readAhead(io.NopCloser(&jitterReader{data: make([]byte, 2*pipeBlock), err: cause}))
	defer r.Close()
	if _, err := io.ReadAll(r); !errors.Is(err, cause) {
		t.Fatalf("read after a source failure: got %v, want its error", err)
	}
}

func TestReadAheadStopsOnClose(t *testing.T) {
	before := goleak.IgnoreCurrent()
	src := io.NopCloser(io.LimitReader(zeroReader{}, 1<<30))
	r := readAhead(src)
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// The fetching goroutine must be gone, not parked on a full pipe.
	goleak.VerifyNone(t, before)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }
