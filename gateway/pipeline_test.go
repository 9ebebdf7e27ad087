package gateway

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestBlockPipeCarriesBytesInOrder(t *testing.T) {
	data := make([]byte, 3*pipeBlock*pipeDepth+12345)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	p := newBlockPipe(pipeDepth)
	go func() {
		w := pipeWriter{p}
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+rand.IntN(300000))
			w.Write(rest[:n])
			rest = rest[n:]
		}
		w.Close()
	}()
	got, err := io.ReadAll(pipeReader{p})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("pipe delivered %d bytes, %v; want the %d written in order", len(got), err, len(data))
	}
}

func TestBlockPipeAbortAndReaderClose(t *testing.T) {
	p := newBlockPipe(1)
	w, r := pipeWriter{p}, pipeReader{p}
	w.Write(make([]byte, pipeBlock))
	cause := errors.New("client went away")
	w.CloseWithError(cause)
	if _, err := io.ReadAll(r); !errors.Is(err, cause) {
		t.Fatalf("read after abort: got %v, want the abort cause", err)
	}

	p = newBlockPipe(1)
	w, r = pipeWriter{p}, pipeReader{p}
	done := make(chan error, 1)
	go func() { _, err := w.Write(make([]byte, 8*pipeBlock)); done <- err }()
	time.Sleep(20 * time.Millisecond)
	r.Close()
	select {
	case err := <-done:
		if !errors.Is(err, errReaderClosed) {
			t.Fatalf("blocked writer after reader close: got %v, want errReaderClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("writer still blocked after the reader closed")
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
