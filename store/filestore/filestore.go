// Package filestore implements store.Bucket over a folder on local disk. It is
// sealgate's embedded default driver.
//
// The object under key "a/b/c" is the file DIR/a/b/c. Directories are created
// with mode 0700 and files with mode 0600. Put writes a temporary file,
// fsyncs it, gives it the final name and fsyncs the directory, so readers
// only ever see complete objects and an acknowledged object survives a crash.
// On Linux the temporary file is unnamed (O_TMPFILE) until then, so a crash
// while it is written leaves nothing behind; elsewhere, or on a file system
// without unnamed files, it is named with store.TempPrefix in the object's
// own directory.
//
// Because objects are files, a file store cannot hold both a key and keys
// below it ("a" and "a/b"): such a Put fails with an error wrapping
// store.ErrInvalidKey. Each key segment is a file name, so segments are also
// limited to 255 bytes.
package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/sealgate/sealgate/store"
)

const (
	dirMode = 0o700
	// maxSegmentLen is the longest file name common file systems accept.
	maxSegmentLen = 255
)

var (
	errClosed          = errors.New("store: bucket is closed")
	errSegmentTooLong  = fmt.Errorf("%w: key segment longer than 255 bytes", store.ErrInvalidKey)
	errPrefixCollision = fmt.Errorf("%w: a file store cannot hold both a key and keys below it", store.ErrInvalidKey)
)

// Bucket is a store.Bucket kept in a directory on local disk. It is safe for
// concurrent use, also by several processes sharing the directory.
type Bucket struct {
	root   string
	closed atomic.Bool
	dirs   durableDirs
	syncs  dirSyncs
	// unnamed is set when the file system makes unnamed temporary files
	// (tempFile).
	unnamed bool
}

var _ store.Bucket = (*Bucket)(nil)

// Open returns a Bucket kept in dir, creating dir and its parents with mode
// 0700 when they do not exist. Open returns an error when dir is empty or
// cannot be created or is not a directory.
func Open(dir string) (*Bucket, error) {
	if dir == "" {
		return nil, errors.New("store: filestore: empty directory name")
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store: filestore: %w", err)
	}
	if err := os.MkdirAll(root, dirMode); err != nil {
		return nil, fmt.Errorf("store: filestore: %w", err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("store: filestore: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("store: filestore: %s is not a directory", root)
	}
	if err := syncDir(filepath.Dir(root)); err != nil {
		return nil, fmt.Errorf("store: filestore: %w", err)
	}
	return &Bucket{root: root, unnamed: unnamedFilesWork(root)}, nil
}

// Dir returns the absolute path of the directory that holds the bucket.
func (b *Bucket) Dir() string { return b.root }

// Get returns a reader of length bytes of the object under key, starting at
// offset, as store.Bucket documents. The reader fails with the context's
// error once ctx ends. Get returns an error wrapping store.ErrNotFound when no
// object is stored under key, store.ErrInvalidKey for an unacceptable key,
// and the context's error when ctx has ended.
func (b *Bucket) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := b.check(ctx, key); err != nil {
		return nil, err
	}
	if offset < 0 || length < -1 {
		return nil, fmt.Errorf("store: get %q: invalid range: offset %d, length %d", key, offset, length)
	}
	f, err := os.Open(b.path(key))
	if err != nil {
		return nil, opError("get", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, opError("get", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, notFound(key)
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, opError("get", key, err)
		}
	}
	var r io.Reader = f
	if length >= 0 {
		r = io.LimitReader(f, length)
	}
	return &reader{ctx: ctx, r: r, f: f}, nil
}

// Stat returns the description of the object under key. Stat returns an
// error wrapping store.ErrNotFound when no object is stored under key,
// store.ErrInvalidKey for an unacceptable key, and the context's error when
// ctx has ended.
func (b *Bucket) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	if err := b.check(ctx, key); err != nil {
		return store.ObjectInfo{}, err
	}
	fi, err := os.Stat(b.path(key))
	if err != nil {
		return store.ObjectInfo{}, opError("stat", key, err)
	}
	if !fi.Mode().IsRegular() {
		return store.ObjectInfo{}, notFound(key)
	}
	return store.ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete removes the object under key and then any directories it leaves
// empty, up to the bucket's root. Deleting a missing key is not an error.
// Delete returns an error wrapping store.ErrInvalidKey for an unacceptable
// key, the context's error when ctx has ended, and the file system's error
// when the file cannot be removed.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := b.check(ctx, key); err != nil {
		return err
	}
	p := b.path(key)
	fi, err := os.Lstat(p)
	if isNotExist(err) || (err == nil && fi.IsDir()) {
		return nil
	}
	if err != nil {
		return opError("delete", key, err)
	}
	if err := os.Remove(p); err != nil && !isNotExist(err) {
		return opError("delete", key, err)
	}
	dir := filepath.Dir(p)
	if err := b.syncs.sync(dir); err != nil && !isNotExist(err) {
		return opError("delete", key, err)
	}
	b.removeEmptyDirs(dir)
	return nil
}

// Close marks the bucket closed; later calls fail. Close always returns nil.
func (b *Bucket) Close() error {
	b.closed.Store(true)
	return nil
}

// removeEmptyDirs removes dir and its ancestors below the root for as long as
// they are empty. Failures are ignored: a directory that is not empty, or that
// another caller removed first, simply ends the climb.
func (b *Bucket) removeEmptyDirs(dir string) {
	for dir != b.root && strings.HasPrefix(dir, b.root+string(filepath.Separator)) {
		if b.dirs.remove(dir, func() error { return os.Remove(dir) }) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// check returns an error when the bucket is closed, key is unacceptable or
// ctx has ended.
func (b *Bucket) check(ctx context.Context, key string) error {
	if b.closed.Load() {
		return errClosed
	}
	if err := validateKey(key); err != nil {
		return err
	}
	return ctx.Err()
}

// path returns the file name of the object under a valid key.
func (b *Bucket) path(key string) string {
	return filepath.Join(b.root, filepath.FromSlash(key))
}

// validateKey applies store.ValidateKey and the file system's limit on the
// length of a name.
func validateKey(key string) error {
	if err := store.ValidateKey(key); err != nil {
		return err
	}
	for seg := range strings.SplitSeq(key, "/") {
		if len(seg) > maxSegmentLen {
			return errSegmentTooLong
		}
	}
	return nil
}

// isNotExist reports whether err means that a file is missing, including the
// case where a directory on its path is a file.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

func notFound(key string) error {
	return fmt.Errorf("%w: %q", store.ErrNotFound, key)
}

// opError wraps a file system error of operation op on key, turning a missing
// file into store.ErrNotFound.
func opError(op, key string, err error) error {
	if isNotExist(err) {
		return notFound(key)
	}
	if exhausted(err) {
		return fmt.Errorf("%w: store: %s %q: %w", store.ErrUnavailable, op, key, err)
	}
	return fmt.Errorf("store: %s %q: %w", op, key, err)
}

// exhausted reports an error of a process or system out of file
// descriptors, or a disk out of space: the store is unavailable for now,
// not broken, and the request may be retried.
func exhausted(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// reader is the io.ReadCloser Get returns. It stops with the context's error
// once the context of the Get call ends.
type reader struct {
	ctx context.Context
	r   io.Reader
	f   *os.File
}

func (r *reader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func (r *reader) Close() error { return r.f.Close() }
