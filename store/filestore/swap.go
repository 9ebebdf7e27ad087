package filestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/sealgate/sealgate/store"
)

// version is a file store object's version: a digest of its bytes, so that
// any change is a new version whoever made it.
func version(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

// Load returns the object under key, at most max bytes, and its version.
func (b *Bucket) Load(ctx context.Context, key string, max int64) ([]byte, string, error) {
	rc, err := b.Get(ctx, key, 0, -1)
	if err != nil {
		return nil, "", err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, "", fmt.Errorf("store: load %q: %w", key, err)
	}
	if int64(len(data)) > max {
		return nil, "", fmt.Errorf("store: load %q: larger than %d bytes", key, max)
	}
	return data, version(data), nil
}

// Swap writes data under key if the object is at version ("" = absent).
// Creation links a finished temporary file into place, which fails when the
// key exists; a swap holds the bucket's lock file while it compares and
// renames, so two processes sharing the folder cannot both win.
func (b *Bucket) Swap(ctx context.Context, key string, data []byte, ver string) (string, error) {
	if err := b.check(ctx, key); err != nil {
		return "", err
	}
	if ver == "" {
		return b.create(ctx, key, data)
	}
	unlock, err := b.lock()
	if err != nil {
		return "", fmt.Errorf("store: swap %q: %w", key, err)
	}
	defer unlock()
	cur, err := os.ReadFile(b.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: %q does not exist", store.ErrPrecondition, key)
	}
	if err != nil {
		return "", opError("swap", key, err)
	}
	if version(cur) != ver {
		return "", fmt.Errorf("%w: %q changed", store.ErrPrecondition, key)
	}
	if err := b.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		return "", err
	}
	return version(data), nil
}

// create writes a new object under key, failing if one exists.
func (b *Bucket) create(ctx context.Context, key string, data []byte) (string, error) {
	f, err := b.createTemp(key)
	if err != nil {
		return "", err
	}
	final := b.path(key)
	installed := false
	defer func() {
		f.discard()
		if !installed {
			b.removeEmptyDirs(filepath.Dir(final))
		}
	}()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		return "", fmt.Errorf("store: create %q: %w", key, err)
	}
	if err := b.install(f, key, false); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("%w: %q exists", store.ErrPrecondition, key)
		}
		return "", fmt.Errorf("store: create %q: %w", key, err)
	}
	installed = true
	if err := b.syncs.sync(filepath.Dir(final)); err != nil {
		return "", fmt.Errorf("store: create %q: sync directory: %w", key, err)
	}
	return version(data), nil
}

// lock takes the bucket's swap lock, an flock on its root folder, which
// serializes compare-and-swap writes across processes; the returned function
// releases it.
func (b *Bucket) lock() (func(), error) {
	f, err := os.Open(b.root)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
