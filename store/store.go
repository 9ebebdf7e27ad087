// Package store defines Bucket, the small interface every storage driver of
// sealgate implements, and the errors drivers report through it.
//
// Drivers live in sub-packages: store/filestore (a folder on local disk, the
// embedded default) and store/miniostore (any S3-compatible service). Every
// driver runs the acceptance suite in store/storetest.
//
// A bucket holds opaque objects under slash-separated keys. Callers only ever
// see complete objects: an object becomes visible once it is whole and
// durable, and a failed write leaves nothing behind.
package store

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors. Drivers wrap them with context; callers test for them with
// errors.Is.
var (
	// ErrNotFound reports that no object is stored under the key.
	ErrNotFound = errors.New("store: object not found")
	// ErrUnavailable reports that the backend is unreachable or failed
	// transiently; retrying the operation later may succeed.
	ErrUnavailable = errors.New("store: backend unavailable")
	// ErrInvalidKey reports that a key is not acceptable (see ValidateKey),
	// or that a driver cannot store an object under it.
	ErrInvalidKey = errors.New("store: invalid key")
	// ErrPrecondition means a conditional write found the object not in the
	// state it was made for: it exists when it was to be created, or its
	// version is not the one given. Nothing was written.
	ErrPrecondition = errors.New("store: precondition failed")

	// ErrSizeMismatch reports that the reader given to Put delivered a
	// different number of bytes than the declared size.
	ErrSizeMismatch = errors.New("store: size mismatch")
)

// DefaultListLimit is the number of objects List returns when its limit is
// zero or negative.
const DefaultListLimit = 1000

// MaxKeyLen is the maximum length of a key in bytes.
const MaxKeyLen = 1024

// TempPrefix starts the names of the temporary files drivers write while an
// object is incomplete. No key segment may start with it.
const TempPrefix = ".sg-tmp"

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	// Key is the object's key.
	Key string
	// Size is the object's length in bytes.
	Size int64
	// ModTime is the time the object was last written.
	ModTime time.Time
	// CRC32C is the CRC-32C (Castagnoli) of the whole object as the store
	// computed and checked it when the object was written, when the store
	// keeps one and Stat reports it; 0 with HasCRC32C false otherwise.
	CRC32C    uint32
	HasCRC32C bool
}

// Bucket is a flat namespace of objects addressed by key. Implementations are
// safe for concurrent use by multiple goroutines.
type Bucket interface {
	// Put stores the object read from r under key, replacing any existing
	// one. size is the exact length in bytes, or -1 when unknown.
	//
	// An object becomes visible to Get, Stat and List only once it is
	// complete and durable: a reader never sees a partial object. When Put
	// fails (r returns an error, ctx is cancelled, the size does not match)
	// nothing is left under key and any previous object stays intact.
	//
	// Put returns an error wrapping ErrInvalidKey for an unacceptable key,
	// ErrSizeMismatch when r delivers more or fewer than size bytes, the
	// context's error when ctx ends first, ErrUnavailable when the backend
	// cannot be reached, and any error r returns, wrapped.
	Put(ctx context.Context, key string, r io.Reader, size int64) error

	// Get returns a reader of length bytes of the object under key, starting
	// at offset; length -1 reads to the end. A range reaching past the end
	// of the object is cut short at the end, and an offset at or past the
	// end yields an empty reader. The caller must close the reader.
	//
	// Get returns an error wrapping ErrNotFound when no object is stored
	// under key, ErrInvalidKey for an unacceptable key, ErrUnavailable when
	// the backend cannot be reached, and a plain error for a negative offset
	// or a length below -1.
	Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)

	// Stat returns the description of the object under key.
	//
	// Stat returns an error wrapping ErrNotFound when no object is stored
	// under key, ErrInvalidKey for an unacceptable key, and ErrUnavailable
	// when the backend cannot be reached.
	Stat(ctx context.Context, key string) (ObjectInfo, error)

	// Delete removes the object under key. Deleting a missing key is not an
	// error, so Delete is idempotent.
	//
	// Delete returns an error wrapping ErrInvalidKey for an unacceptable
	// key and ErrUnavailable when the backend cannot be reached.
	Delete(ctx context.Context, key string) error

	// List returns up to limit objects whose keys start with prefix and sort
	// strictly after startAfter in byte order, in ascending key order. A
	// limit of zero or less means DefaultListLimit. List returns fewer than
	// limit objects only when no more match, so a short page ends a listing;
	// to page through one, pass the last key of a page as startAfter of the
	// next.
	//
	// List returns an empty result, not an error, when nothing matches,
	// including for a prefix that no valid key can start with. It returns
	// an error wrapping ErrUnavailable when the backend cannot be reached.
	List(ctx context.Context, prefix, startAfter string, limit int) ([]ObjectInfo, error)

	// Load returns the whole of a small object and its version (an opaque
	// ETag) for a later Swap. It returns an error wrapping ErrNotFound when
	// the key does not exist, and an error when the object is larger than
	// max bytes.
	Load(ctx context.Context, key string, max int64) (data []byte, version string, err error)

	// Swap writes data under key only if the object is still at version:
	// with version "" only if no object exists (create-only), otherwise
	// only if its current version is version (compare-and-swap). Of
	// concurrent Swaps from one version exactly one succeeds. It returns the
	// new version, or an error wrapping ErrPrecondition when the condition
	// does not hold (nothing is written). Small control objects only:
	// settings, indexes, leases.
	Swap(ctx context.Context, key string, data []byte, version string) (newVersion string, err error)

	// Close releases the bucket's resources. The bucket must not be used
	// after Close.
	Close() error
}

// ValidateKey reports whether key is acceptable as an object key. A valid
// key is non-empty, at most MaxKeyLen bytes of valid UTF-8, contains no NUL
// or backslash, and consists of slash-separated segments with no leading
// slash, no empty segment, no "." or ".." segment and no segment starting
// with TempPrefix.
//
// ValidateKey returns nil for a valid key and otherwise an error wrapping
// ErrInvalidKey.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return invalidKey("empty key")
	case len(key) > MaxKeyLen:
		return invalidKey("key longer than 1024 bytes")
	case !utf8.ValidString(key):
		return invalidKey("key is not valid UTF-8")
	case strings.ContainsAny(key, "\x00\\"):
		return invalidKey("key contains NUL or backslash")
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return invalidKey("key has an empty segment")
		case seg == "." || seg == "..":
			return invalidKey("key has a dot segment")
		case strings.HasPrefix(seg, TempPrefix):
			return invalidKey("key segment starts with reserved " + TempPrefix)
		}
	}
	return nil
}

func invalidKey(reason string) error {
	return &keyError{reason: reason}
}

// keyError carries the reason a key was refused without echoing the key.
type keyError struct{ reason string }

func (e *keyError) Error() string { return "store: invalid key: " + e.reason }

func (e *keyError) Unwrap() error { return ErrInvalidKey }
