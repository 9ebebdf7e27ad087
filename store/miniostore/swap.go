package miniostore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"

	"github.com/sealgate/sealgate/store"
)

// Load returns the object under key, at most max bytes, and its ETag, from
// one GET request, so that the ETag is the version of these very bytes.
// (minio-go's Object would make the read a second request, refused with 412
// when a writer got in between.)
func (b *Bucket) Load(ctx context.Context, key string, max int64) ([]byte, string, error) {
	if err := b.check(ctx, key); err != nil {
		return nil, "", err
	}
	rc, info, _, err := minio.Core{Client: b.client}.GetObject(ctx, b.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, "", opError(ctx, "load", key, err)
	}
	defer rc.Close()
	if info.Size > max {
		return nil, "", fmt.Errorf("miniostore: load %q: %d bytes, larger than %d", key, info.Size, max)
	}
	data, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, "", opError(ctx, "load", key, err)
	}
	if int64(len(data)) != info.Size {
		return nil, "", fmt.Errorf("%w: miniostore: load %q: %d of %d bytes", store.ErrUnavailable, key, len(data), info.Size)
	}
	return data, info.ETag, nil
}

// Swap writes data under key with a conditional PUT: If-None-Match: * to
// create, If-Match: version to replace. S3 and MinIO evaluate the condition
// atomically with the write; of racing writers exactly one wins.
func (b *Bucket) Swap(ctx context.Context, key string, data []byte, version string) (string, error) {
	if err := b.check(ctx, key); err != nil {
		return "", err
	}
	opts := b.putOptions(int64(len(data)))
	opts.PartSize = 0
	if version == "" {
		opts.SetMatchETagExcept("*")
	} else {
		opts.SetMatchETag(version)
	}
	info, err := b.client.PutObject(ctx, b.bucket, key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		err = opError(ctx, "swap", key, err)
		// If-Match on a missing key answers 404: the version is gone too.
		if errors.Is(err, ErrPreconditionFailed) || errors.Is(err, store.ErrNotFound) {
			return "", fmt.Errorf("%w: %w", store.ErrPrecondition, err)
		}
		return "", err
	}
	return info.ETag, nil
}
