package miniostore

import (
	"context"
	"fmt"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/sealgate/sealgate/store"
)

// maxKeysPerRequest is the most keys S3 returns per listing request.
const maxKeysPerRequest = 1000

// List returns up to limit objects whose keys start with prefix and sort
// strictly after startAfter, in ascending byte order, as store.Bucket
// documents. Objects whose keys store.ValidateKey refuses (written to the
// bucket by something else than a store.Bucket) are skipped.
//
// List asks for no more keys than it needs and stops as soon as it has
// limit objects. When startAfter lies in a "directory" below prefix, List
// lists that directory first and then each level above it, starting after
// the directory, rather than sending startAfter with the whole prefix: MinIO
// ends such a listing early, reporting no more keys, when many keys sort
// just before startAfter's directory ("acme-eu/..." before "acme/...").
// Crossing a level costs one listing request and one HEAD request.
//
// List returns an empty result when nothing matches, an error wrapping
// store.ErrUnavailable when the service cannot be reached, the context's
// error when ctx ends first, and a plain error when the bucket no longer
// exists.
func (b *Bucket) List(ctx context.Context, prefix, startAfter string, limit int) ([]store.ObjectInfo, error) {
	if b.closed.Load() {
		return nil, errClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("miniostore: list %q: %w", prefix, err)
	}
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	l := &lister{b: b, prefix: prefix, startAfter: startAfter, limit: limit}
	for _, q := range listPlan(prefix, startAfter) {
		if q.exact != "" {
			if err := l.addExact(ctx, q.exact); err != nil {
				return nil, err
			}
		}
		if len(l.out) < limit {
			if err := l.run(ctx, q.prefix, q.startAfter); err != nil {
				return nil, err
			}
		}
		if len(l.out) == limit {
			break
		}
	}
	return l.out, nil
}

// lister gathers the results of one List call.
type lister struct {
	b          *Bucket
	prefix     string
	startAfter string
	limit      int
	out        []store.ObjectInfo
}

// add appends the object unless List must not return it: the server's
// prefix and start may be looser than asked for.
func (l *lister) add(key string, size int64, info minio.ObjectInfo) {
	if !strings.HasPrefix(key, l.prefix) || key <= l.startAfter || store.ValidateKey(key) != nil {
		return
	}
	l.out = append(l.out, store.ObjectInfo{Key: key, Size: size, ModTime: info.LastModified})
}

// addExact appends the object under key when it exists.
func (l *lister) addExact(ctx context.Context, key string) error {
	if !strings.HasPrefix(key, l.prefix) || key <= l.startAfter || store.ValidateKey(key) != nil {
		return nil
	}
	info, err := l.b.client.StatObject(ctx, l.b.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		if isCode(err, minio.NoSuchKey) {
			return nil
		}
		return l.error(ctx, err)
	}
	l.add(key, info.Size, info)
	return nil
}

// run appends the objects of one listing until l.limit is reached.
func (l *lister) run(ctx context.Context, prefix, startAfter string) error {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the listing when we stop early
	fetchOwner := false
	opts := minio.ListObjectsOptions{
		Prefix:     prefix,
		StartAfter: startAfter,
		Recursive:  true,
		MaxKeys:    min(l.limit-len(l.out), maxKeysPerRequest),
		FetchOwner: &fetchOwner,
	}
	for obj := range l.b.client.ListObjectsIter(lctx, l.b.bucket, opts) {
		if obj.Err != nil {
			return l.error(ctx, obj.Err)
		}
		l.add(obj.Key, obj.Size, obj)
		if len(l.out) == l.limit {
			return nil
		}
	}
	// minio-go ends a listing silently when its context ends.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("miniostore: list %q: %w", l.prefix, err)
	}
	return nil
}

func (l *lister) error(ctx context.Context, err error) error {
	if isCode(err, minio.NoSuchBucket) {
		return fmt.Errorf("miniostore: list %q: bucket %q does not exist: %w", l.prefix, l.b.bucket, err)
	}
	return opError(ctx, "list", l.prefix, err)
}
