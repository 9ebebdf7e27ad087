package miniostore

// Unit tests that need no server: error classification and the body of Put.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"

	"github.com/minio/minio-go/v7"

	"github.com/sealgate/sealgate/store"
)

// timeoutError is a net.Error that reports a timeout.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestClassify(t *testing.T) {
	resp := func(code string, status int) error {
		return minio.ErrorResponse{Code: code, StatusCode: status, Message: "synthetic"}
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	sentinels := map[string]error{
		"ErrNotFound":           store.ErrNotFound,
		"ErrUnavailable":        store.ErrUnavailable,
		"ErrInvalidKey":         store.ErrInvalidKey,
		"ErrPreconditionFailed": ErrPreconditionFailed,
		"context.Canceled":      context.Canceled,
		"DeadlineExceeded":      context.DeadlineExceeded,
	}
	cases := []struct {
		name string
		err  error
		want string // key of sentinels, or "" for none
	}{
		{"NoSuchKey", resp(minio.NoSuchKey, 404), "ErrNotFound"},
		{"NoSuchBucket", resp(minio.NoSuchBucket, 404), "ErrNotFound"},
		{"NoSuchVersion", resp(minio.NoSuchVersion, 404), "ErrNotFound"},
		{"wrapped NoSuchKey", fmt.Errorf("wrapped: %w", resp(minio.NoSuchKey, 404)), "ErrNotFound"},
		{"PreconditionFailed", resp(minio.PreconditionFailed, 412), "ErrPreconditionFailed"},
		{"XMinioInvalidObjectName", resp(minio.XMinioInvalidObjectName, 400), "ErrInvalidKey"},
		{"KeyTooLongError", resp("KeyTooLongError", 400), "ErrInvalidKey"},
		{"SlowDown", resp("SlowDown", 503), "ErrUnavailable"},
		{"SlowDown without status", resp("SlowDown", 0), "ErrUnavailable"},
		{"ServiceUnavailable", resp("ServiceUnavailable", 503), "ErrUnavailable"},
		{"ServerNotInitialized", resp("ServerNotInitialized", 503), "ErrUnavailable"},
		{"XMinioServerNotInitialized", resp("XMinioServerNotInitialized", 503), "ErrUnavailable"},
		{"RequestTimeout", resp("RequestTimeout", 400), "ErrUnavailable"},
		{"InternalError", resp(minio.InternalError, 500), "ErrUnavailable"},
		{"unknown 502", resp("BadGatewaySomething", 502), "ErrUnavailable"},
		{"unknown 503", resp("ServerBusy", 503), "ErrUnavailable"},
		{"429", resp("TooManyRequests", 429), "ErrUnavailable"},
		{"AccessDenied", resp(minio.AccessDenied, 403), ""},
		{"InvalidArgument", resp(minio.InvalidArgument, 400), ""},
		{"connection refused", refused, "ErrUnavailable"},
		{"connection refused in url.Error", &url.Error{Op: "Get", URL: "http://x", Err: refused}, "ErrUnavailable"},
		{"bare ECONNREFUSED", syscall.ECONNREFUSED, "ErrUnavailable"},
		{"ECONNRESET", fmt.Errorf("read: %w", syscall.ECONNRESET), "ErrUnavailable"},
		{"timeout", timeoutError{}, "ErrUnavailable"},
		{"closed by foreign host", &url.Error{Op: "Put", URL: "http://x", Err: errors.New("Connection closed by foreign host http://x. Retry again.")}, "ErrUnavailable"},
		{"unexpected EOF", fmt.Errorf("body: %w", io.ErrUnexpectedEOF), "ErrUnavailable"},
		{"canceled", context.Canceled, "context.Canceled"},
		{"canceled in url.Error", &url.Error{Op: "Get", URL: "http://x", Err: context.Canceled}, "context.Canceled"},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), "DeadlineExceeded"},
		{"other", errors.New("something else"), ""},
	}
	for _, c := range cases {
		got := classify(c.err)
		if !errors.Is(got, c.err) {
			t.Errorf("classify(%s) = %v, want an error wrapping the original %v", c.name, got, c.err)
		}
		for name, sentinel := range sentinels {
			if is, want := errors.Is(got, sentinel), name == c.want; is != want {
				t.Errorf("classify(%s) = %v: errors.Is(%s) = %t, want %t", c.name, got, name, is, want)
			}
		}
	}
	if got := classify(nil); got != nil {
		t.Errorf("classify(nil) = %v, want nil", got)
	}
	got := classify(resp(minio.PreconditionFailed, 412))
	if !strings.Contains(got.Error(), "miniostore: precondition failed") {
		t.Errorf("classify(PreconditionFailed) = %q, want it to contain %q", got, "miniostore: precondition failed")
	}
}

func TestOpError(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := opError(ctx, "get", "k", syscall.ECONNREFUSED)
	if !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("opError with a cancelled context = %v, want context.Canceled and not ErrUnavailable", err)
	}
	err = opError(t.Context(), "get", "k", minio.ErrorResponse{Code: minio.NoSuchKey, StatusCode: 404})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("opError(NoSuchKey) = %v, want ErrNotFound", err)
	}
	if want := `miniostore: get "k": `; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("opError(NoSuchKey) = %q, want the prefix %q", err, want)
	}
}

// readUpTo reads from r until it fails and returns what it got.
func readUpTo(r io.Reader) ([]byte, error) {
	var got []byte
	buf := make([]byte, 7)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
}

func TestPutReader(t *testing.T) {
	data := []byte("0123456789abcdefghij") // 20 bytes
	errRead := errors.New("read failed")
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	cases := []struct {
		name    string
		ctx     context.Context
		src     io.Reader
		size    int64
		want    error
		maxRead int // bytes the reader may pass on before failing
	}{
		{"exact", t.Context(), bytes.NewReader(data), 20, nil, 20},
		{"exact, one byte at a time", t.Context(), iotest.OneByteReader(bytes.NewReader(data)), 20, nil, 20},
		{"exact, EOF with the data", t.Context(), iotest.DataErrReader(bytes.NewReader(data)), 20, nil, 20},
		{"unknown", t.Context(), bytes.NewReader(data), -1, nil, 20},
		{"short", t.Context(), bytes.NewReader(data), 21, store.ErrSizeMismatch, 20},
		{"long", t.Context(), bytes.NewReader(data), 19, store.ErrSizeMismatch, 18},
		{"long by much", t.Context(), bytes.NewReader(data), 7, store.ErrSizeMismatch, 6},
		{"empty, long", t.Context(), bytes.NewReader(data), 0, store.ErrSizeMismatch, 0},
		{"empty", t.Context(), bytes.NewReader(nil), 0, nil, 0},
		{"error", t.Context(), io.MultiReader(bytes.NewReader(data), iotest.ErrReader(errRead)), 30, errRead, 20},
		{"error after the size", t.Context(), io.MultiReader(bytes.NewReader(data), iotest.ErrReader(errRead)), 20, errRead, 19},
		{"error, unknown size", t.Context(), io.MultiReader(bytes.NewReader(data), iotest.ErrReader(errRead)), -1, errRead, 20},
		{"cancelled", cancelled, bytes.NewReader(data), 20, context.Canceled, 0},
	}
	for _, c := range cases {
		r := &putReader{ctx: c.ctx, src: c.src, size: c.size, remaining: c.size}
		got, err := readUpTo(r)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: reading = %v, want %v", c.name, err, c.want)
		}
		if len(got) > c.maxRead || !bytes.Equal(got, data[:len(got)]) {
			t.Errorf("%s: read %q, want at most the first %d bytes", c.name, got, c.maxRead)
		}
		if c.want == nil && len(got) != c.maxRead {
			t.Errorf("%s: read %d bytes, want %d", c.name, len(got), c.maxRead)
		}
		if !errors.Is(r.err, c.want) {
			t.Errorf("%s: kept error %v, want %v", c.name, r.err, c.want)
		}
		if _, err := r.Read(make([]byte, 1)); c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: Read after the failure = %v, want %v again", c.name, err, c.want)
		}
	}
}

// writeSizes is a net.Conn that records the size of every write.
type writeSizes struct {
	net.Conn
	sizes []int
	got   bytes.Buffer
}

func (w *writeSizes) Write(p []byte) (int, error) {
	w.sizes = append(w.sizes, len(p))
	return w.got.Write(p)
}

// A request body goes to a plain connection in writes as large as the
// reads that deliver it (up to bodyWriteSize), not Go's 32 KiB, and every
// byte arrives in order.
func TestBigWriteConnWritesWhatEachReadGives(t *testing.T) {
	body := make([]byte, 3*bodyWriteSize+1234)
	for i := range body {
		body[i] = byte(i * 31)
	}
	w := &writeSizes{}
	// HalfReader returns half of what is asked: 128 KiB a read.
	n, err := bigWriteConn{w}.ReadFrom(iotest.HalfReader(bytes.NewReader(body)))
	if err != nil || n != int64(len(body)) || !bytes.Equal(w.got.Bytes(), body) {
		t.Fatalf("ReadFrom = %d, %v; %d bytes written, want all %d in order", n, err, w.got.Len(), len(body))
	}
	for i, s := range w.sizes[:len(w.sizes)-1] {
		if s != bodyWriteSize/2 {
			t.Fatalf("write %d of %d bytes, want the %d each read gave: %v", i, s, bodyWriteSize/2, w.sizes)
		}
	}
	// A body that fails passes its error on after what it delivered.
	w = &writeSizes{}
	boom := errors.New("boom")
	n, err = bigWriteConn{w}.ReadFrom(io.MultiReader(bytes.NewReader(body[:1000]), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || n != 1000 {
		t.Fatalf("failing body: ReadFrom = %d, %v; want 1000 bytes and its error", n, err)
	}
}
