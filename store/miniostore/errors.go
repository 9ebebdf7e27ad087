package miniostore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/minio/minio-go/v7"

	"github.com/sealgate/sealgate/store"
)

// ErrPreconditionFailed reports that a conditional request found the object
// changed, for example when the source of CopyTo was overwritten while it
// was being copied. Retrying the whole operation may succeed. It stands in
// until package store has a sentinel of its own for this case.
var ErrPreconditionFailed = errors.New("miniostore: precondition failed")

var errClosed = errors.New("miniostore: bucket is closed")

// S3 error codes that minio-go has no constant for.
const (
	codeSlowDown                   = "SlowDown"
	codeServiceUnavailable         = "ServiceUnavailable"
	codeServerNotInitialized       = "ServerNotInitialized"
	codeXMinioServerNotInitialized = "XMinioServerNotInitialized"
	codeRequestTimeout             = "RequestTimeout"
	codeKeyTooLong                 = "KeyTooLongError"
	codeObjectExistsAsDirectory    = "XMinioObjectExistsAsDirectory"
)

// classify maps an error of minio-go or of the network to the errors of
// package store, keeping the original in the chain:
//
//   - a context's error passes through unchanged, so errors.Is(err,
//     context.Canceled) holds;
//   - NoSuchKey, NoSuchBucket and NoSuchVersion wrap store.ErrNotFound;
//   - PreconditionFailed wraps ErrPreconditionFailed;
//   - object names the server refuses (including a key that is a
//     "directory" of other keys on servers that cannot hold both) wrap
//     store.ErrInvalidKey;
//   - SlowDown, ServiceUnavailable, the "server not initialised" codes,
//     RequestTimeout, any 5xx or 429 status, any net.Error (refused, reset
//     or timed out connections, broken requests), and io.ErrUnexpectedEOF
//     wrap store.ErrUnavailable;
//   - anything else is returned as it is.
//
// classify returns nil for a nil error.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.Code {
		case minio.NoSuchKey, minio.NoSuchBucket, minio.NoSuchVersion:
			return fmt.Errorf("%w: %w", store.ErrNotFound, err)
		case minio.PreconditionFailed:
			return fmt.Errorf("%w: %w", ErrPreconditionFailed, err)
		case minio.XMinioInvalidObjectName, codeKeyTooLong, codeObjectExistsAsDirectory:
			return fmt.Errorf("%w: %w", store.ErrInvalidKey, err)
		case codeSlowDown, codeServiceUnavailable, codeServerNotInitialized,
			codeXMinioServerNotInitialized, codeRequestTimeout:
			return unavailable(err)
		}
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return unavailable(err)
		}
		return err
	}
	var netErr net.Error
	switch {
	case errors.As(err, &netErr),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF):
		return unavailable(err)
	}
	return err
}

func unavailable(err error) error {
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// opError classifies err, the failure of operation op on key, and prefixes
// it with the package, operation and key. When ctx has ended, the
// context's error is returned instead (wrapped), since it is the cause.
func opError(ctx context.Context, op, key string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("miniostore: %s %q: %w", op, key, cerr)
	}
	return fmt.Errorf("miniostore: %s %q: %w", op, key, classify(err))
}

// isCode reports whether err is an S3 error response with the given code.
func isCode(err error, code string) bool {
	var resp minio.ErrorResponse
	return errors.As(err, &resp) && resp.Code == code
}
