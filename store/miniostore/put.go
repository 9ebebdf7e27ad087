package miniostore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/sealgate/sealgate/store"
)

// smallObjectSize is the largest object Put holds in memory whole: it reads
// that far ahead to find out whether an object of unknown size fits in one
// request, and it can then repeat a request that failed spuriously.
const smallObjectSize = 1 << 20

// smallBuffers holds the buffers of small uploads of unknown size.
var smallBuffers = sync.Pool{New: func() any { b := make([]byte, smallObjectSize); return &b }}

// Retries of a Put of an object held in memory that MinIO refused with
// AccessDenied: a MinIO drive answers 403 now and then when a Delete
// removes the directory that a concurrent Put is writing into
// ("a/b/x" deleted while "a/b/y" is stored).
const (
	putAttempts    = 4
	putRetryPause  = 25 * time.Millisecond
	putContentType = "application/octet-stream"
)

// Put stores the object read from r under key, as store.Bucket documents.
// An object of at most 1 MiB, of known or unknown size (-1), is read into
// memory first and goes up in one PutObject request, repeated up to 3 times
// when MinIO refuses it spuriously with AccessDenied. A larger object of
// known size up to the part size goes up in one request of exactly that
// size streamed from r; any other goes up as a multipart upload of parts of
// the configured part size, one part in memory at a time, which is aborted
// when it fails. S3 makes the object visible only when the upload
// completes, so a failed Put leaves nothing under key and any previous
// object intact.
//
// Put returns an error wrapping store.ErrInvalidKey for an unacceptable key,
// store.ErrSizeMismatch when r delivers more or fewer than size bytes, the
// context's error when ctx ends first, the error r returns, and an error
// wrapping store.ErrUnavailable when the service cannot be reached.
func (b *Bucket) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := b.check(ctx, key); err != nil {
		return err
	}
	if size < -1 {
		return fmt.Errorf("miniostore: put %q: invalid size %d", key, size)
	}
	body := &putReader{ctx: ctx, src: r, size: size, remaining: size}
	if size > smallObjectSize {
		return b.putStream(ctx, key, body, body, size)
	}
	// A known size gets a buffer of exactly that size; an unknown one
	// borrows a pooled 1 MiB buffer (small uploads are the common case, and
	// zeroing 1 MiB per 4 KiB object dominated their CPU time).
	var buf []byte
	if size >= 0 {
		buf = make([]byte, size)
	} else {
		pb := smallBuffers.Get().(*[]byte)
		defer smallBuffers.Put(pb)
		buf = *pb
	}
	n, err := io.ReadFull(body, buf)
	switch {
	case body.err != nil:
		return fmt.Errorf("miniostore: put %q: %w", key, body.err)
	case size == 0:
		// io.ReadFull reads nothing into an empty buffer.
		if err := body.checkEnd(); err != nil {
			return fmt.Errorf("miniostore: put %q: %w", key, err)
		}
	case size < 0 && err == nil:
		// At least 1 MiB of unknown size: stream it.
		return b.putStream(ctx, key, body, io.MultiReader(bytes.NewReader(buf), body), -1)
	}
	return b.putBuffered(ctx, key, buf[:n])
}

// putBuffered stores data under key.
func (b *Bucket) putBuffered(ctx context.Context, key string, data []byte) error {
	var err error
	for attempt := range putAttempts {
		if attempt > 0 {
			t := time.NewTimer(putRetryPause << (attempt - 1))
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("miniostore: put %q: %w", key, ctx.Err())
			case <-t.C:
			}
		}
		_, err = b.client.PutObject(ctx, b.bucket, key, bytes.NewReader(data), int64(len(data)), b.putOptions(int64(len(data))))
		if !isCode(err, minio.AccessDenied) {
			break
		}
	}
	if err != nil {
		return opError(ctx, "put", key, err)
	}
	return nil
}

// putStream stores the object read from rd, which reads from body, under
// key; size is -1 when unknown.
func (b *Bucket) putStream(ctx context.Context, key string, body *putReader, rd io.Reader, size int64) error {
	_, err := b.client.PutObject(ctx, b.bucket, key, rd, size, b.putOptions(size))
	if body.err != nil {
		// The body failed before it ended, so the server cannot have
		// completed the object; the body's failure is the cause to report.
		return fmt.Errorf("miniostore: put %q: %w", key, body.err)
	}
	if err != nil {
		return opError(ctx, "put", key, err)
	}
	return nil
}

// putOptions returns the options of an upload of size bytes (-1:
// unknown): see the package comment on integrity. A known size up to the
// single PUT limit goes up in one request streamed from the body, its
// CRC32C sent in a trailer; anything else in parts.
func (b *Bucket) putOptions(size int64) minio.PutObjectOptions {
	return minio.PutObjectOptions{
		ContentType:          putContentType,
		PartSize:             b.partSize,
		DisableMultipart:     size >= 0 && size <= b.singleMax,
		DisableContentSha256: true,
		Checksum:             minio.ChecksumFullObjectCRC32C,
	}
}

// putReader is the body Put hands to minio-go. It stops with the context's
// error once ctx ends, and for a known size it turns a reader that ends
// early or holds more data into an error before the last byte is passed on,
// so that the upload fails rather than storing a wrong object. It keeps the
// first error it returned.
type putReader struct {
	ctx       context.Context
	src       io.Reader
	size      int64 // -1 when unknown
	remaining int64 // bytes still expected when size is known
	ended     bool  // src returned io.EOF
	err       error
}

func (r *putReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if err := r.ctx.Err(); err != nil {
		return r.fail(err)
	}
	if r.size < 0 {
		n, err := r.src.Read(p)
		if err != nil && err != io.EOF {
			return r.fail(err)
		}
		return n, err
	}
	if r.remaining == 0 {
		if err := r.checkEnd(); err != nil {
			return r.fail(err)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > r.remaining {
		p = p[:r.remaining]
	}
	n, err := r.src.Read(p)
	r.remaining -= int64(n)
	switch {
	case err == io.EOF && r.remaining > 0:
		return r.fail(fmt.Errorf("%w: reader ended after %d of %d bytes", store.ErrSizeMismatch, r.size-r.remaining, r.size))
	case err == io.EOF:
		r.ended = true
	case err != nil:
		return r.fail(err)
	}
	if r.remaining == 0 {
		// Check before passing the last bytes on: once the server has them
		// all, it may complete the object.
		if err := r.checkEnd(); err != nil {
			return r.fail(err)
		}
	}
	return n, nil
}

// checkEnd returns nil when src has no more data, an error wrapping
// store.ErrSizeMismatch when it has, and src's error when it fails.
func (r *putReader) checkEnd() error {
	var one [1]byte
	for i := 0; !r.ended; i++ {
		n, err := r.src.Read(one[:])
		switch {
		case n > 0:
			return fmt.Errorf("%w: reader holds more than %d bytes", store.ErrSizeMismatch, r.size)
		case err == io.EOF:
			r.ended = true
		case err != nil:
			return err
		case i >= 100:
			return io.ErrNoProgress
		}
	}
	return nil
}

func (r *putReader) fail(err error) (int, error) {
	r.err = err
	return 0, err
}

// maxCopyObjectSize is the largest source a single CopyObject request may
// copy on S3; larger ones are copied part by part.
const maxCopyObjectSize = 5 << 30

// CanCopyTo reports whether CopyTo copies from b to dst on the server side,
// which it does when dst is a *Bucket on the same endpoint with the same
// credentials (SameEndpoint).
func (b *Bucket) CanCopyTo(dst store.Bucket) bool {
	d, ok := dst.(*Bucket)
	return ok && b.SameEndpoint(d)
}

// CopyTo copies the object under srcKey in b to dstKey in dst, replacing any
// object there. When CanCopyTo(dst), the service copies it without the data
// passing through this process, on the condition that the source does not
// change during the copy; otherwise CopyTo streams the object from b into
// dst.Put, so dst may be any store.Bucket.
//
// CopyTo returns an error wrapping store.ErrInvalidKey for an unacceptable
// key, store.ErrNotFound when no object is stored under srcKey,
// ErrPreconditionFailed when the source was overwritten during a server-side
// copy, store.ErrUnavailable when either service cannot be reached, the
// context's error when ctx ends first, and any error of dst.Put.
func (b *Bucket) CopyTo(ctx context.Context, srcKey string, dst store.Bucket, dstKey string) error {
	d, isBucket := dst.(*Bucket)
	if dst == nil || (isBucket && d == nil) {
		return errors.New("miniostore: copy: nil destination bucket")
	}
	if err := b.check(ctx, srcKey); err != nil {
		return err
	}
	if err := store.ValidateKey(dstKey); err != nil {
		return fmt.Errorf("miniostore: copy: %w", err)
	}
	if !b.CanCopyTo(dst) {
		return b.streamTo(ctx, srcKey, dst, dstKey)
	}
	if err := d.check(ctx, dstKey); err != nil {
		return err
	}
	info, err := b.client.StatObject(ctx, b.bucket, srcKey, minio.StatObjectOptions{})
	if err != nil {
		return opError(ctx, "copy", srcKey, err)
	}
	if b.bucket == d.bucket && srcKey == dstKey {
		return nil // S3 refuses to copy an object onto itself unchanged
	}
	src := minio.CopySrcOptions{Bucket: b.bucket, Object: srcKey, MatchETag: info.ETag}
	dest := minio.CopyDestOptions{Bucket: d.bucket, Object: dstKey}
	if info.Size <= maxCopyObjectSize {
		_, err = b.client.CopyObject(ctx, dest, src)
	} else {
		_, err = b.client.ComposeObject(ctx, dest, src)
	}
	if err != nil {
		return opError(ctx, "copy", srcKey, err)
	}
	return nil
}

// streamTo copies the object under srcKey into dst through this process.
func (b *Bucket) streamTo(ctx context.Context, srcKey string, dst store.Bucket, dstKey string) error {
	body, info, err := b.getObject(ctx, srcKey, minio.GetObjectOptions{Checksum: true})
	if err != nil {
		return opError(ctx, "copy", srcKey, err)
	}
	defer body.Close()
	return dst.Put(ctx, dstKey, &objectReader{ctx: ctx, key: srcKey, body: body}, info.Size)
}

// KeepsCRC32C reports that objects this bucket writes keep their
// full-object CRC-32C, which the server checked against the bytes it
// received (every Put sends one), and that Stat reports it.
func (b *Bucket) KeepsCRC32C() bool { return true }
