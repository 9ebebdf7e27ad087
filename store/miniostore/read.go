package miniostore

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/sealgate/sealgate/store"
)

// Get returns a reader of length bytes of the object under key, starting at
// offset, as store.Bucket documents. The range is fetched with one GET
// request, which Get sends before it returns, so the reader delivers one
// version of the object even while it is being overwritten. When the whole
// object is read, the reader checks it against the object's CRC32C and
// fails at the end on a mismatch. The reader's other errors are classified
// like Get's, so a connection lost while reading wraps store.ErrUnavailable.
//
// Get returns an error wrapping store.ErrNotFound when no object is stored
// under key, store.ErrInvalidKey for an unacceptable key,
// store.ErrUnavailable when the service cannot be reached, the context's
// error when ctx ends first, and a plain error for a negative offset or a
// length below -1.
func (b *Bucket) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := b.check(ctx, key); err != nil {
		return nil, err
	}
	if offset < 0 || length < -1 {
		return nil, fmt.Errorf("miniostore: get %q: invalid range: offset %d, length %d", key, offset, length)
	}
	if length == 0 {
		// An empty range cannot be asked for; still report a missing key.
		if _, err := b.Stat(ctx, key); err != nil {
			return nil, err
		}
		return emptyReader(), nil
	}
	var opts minio.GetObjectOptions
	var err error
	switch {
	case length > 0 && length <= math.MaxInt64-offset:
		err = opts.SetRange(offset, offset+length-1)
	case offset > 0:
		err = opts.SetRange(offset, 0) // bytes=offset-
	}
	if err != nil {
		return nil, fmt.Errorf("miniostore: get %q: %w", key, err)
	}
	body, _, err := b.getObject(ctx, key, opts)
	if err != nil {
		if isInvalidRange(err) {
			// The offset is at or past the end of an existing object.
			return emptyReader(), nil
		}
		return nil, opError(ctx, "get", key, err)
	}
	return &objectReader{ctx: ctx, key: key, body: body}, nil
}

// getObject sends one GET request for key and returns the response's body
// and the object's description. Its error is minio-go's.
func (b *Bucket) getObject(ctx context.Context, key string, opts minio.GetObjectOptions) (io.ReadCloser, minio.ObjectInfo, error) {
	body, info, _, err := b.core.GetObject(ctx, b.bucket, key, opts)
	return body, info, err
}

// isInvalidRange reports whether err is the answer to a range that starts at
// or past the end of an object.
func isInvalidRange(err error) bool {
	var resp minio.ErrorResponse
	return errors.As(err, &resp) &&
		(resp.Code == minio.InvalidRange || resp.StatusCode == http.StatusRequestedRangeNotSatisfiable)
}

func emptyReader() io.ReadCloser { return io.NopCloser(strings.NewReader("")) }

// objectReader reads an object's body, classifying the errors it meets.
type objectReader struct {
	ctx  context.Context
	key  string
	body io.ReadCloser
}

func (r *objectReader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	if err != nil && err != io.EOF {
		err = opError(r.ctx, "read", r.key, err)
	}
	return n, err
}

func (r *objectReader) Close() error { return r.body.Close() }

// Stat returns the description of the object under key.
//
// Stat returns an error wrapping store.ErrNotFound when no object is stored
// under key, store.ErrInvalidKey for an unacceptable key,
// store.ErrUnavailable when the service cannot be reached, and the
// context's error when ctx ends first.
func (b *Bucket) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	if err := b.check(ctx, key); err != nil {
		return store.ObjectInfo{}, err
	}
	info, err := b.client.StatObject(ctx, b.bucket, key, minio.StatObjectOptions{Checksum: true})
	if err != nil {
		return store.ObjectInfo{}, opError(ctx, "stat", key, err)
	}
	out := store.ObjectInfo{Key: key, Size: info.Size, ModTime: info.LastModified}
	// Puts send a full-object CRC32C that the server checks against the bytes
	// it stores; report it so the mover can verify a copy without reading it
	// back. A composite (per-part) checksum is not the object's CRC.
	if raw, err := base64.StdEncoding.DecodeString(info.ChecksumCRC32C); err == nil && len(raw) == 4 &&
		!strings.EqualFold(info.ChecksumMode, "COMPOSITE") {
		out.CRC32C, out.HasCRC32C = binary.BigEndian.Uint32(raw), true
	}
	return out, nil
}

// Delete removes the object under key. Deleting a missing key is not an
// error, so Delete is idempotent.
//
// Delete returns an error wrapping store.ErrInvalidKey for an unacceptable
// key, store.ErrUnavailable when the service cannot be reached, the
// context's error when ctx ends first, and an error wrapping
// store.ErrNotFound when the bucket itself no longer exists.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := b.check(ctx, key); err != nil {
		return err
	}
	err := b.client.RemoveObject(ctx, b.bucket, key, minio.RemoveObjectOptions{})
	if err != nil && !isCode(err, minio.NoSuchKey) {
		return opError(ctx, "delete", key, err)
	}
	return nil
}
