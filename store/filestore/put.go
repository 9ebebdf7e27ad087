package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/sealgate/sealgate/store"
)

const (
	// copyBufferSize is the size of the chunks Put copies between checks of
	// its context.
	copyBufferSize = 256 << 10
	// mkdirAttempts bounds how often Put recreates a directory that a
	// concurrent Delete removed while it was empty.
	mkdirAttempts = 10
)

var copyBuffers = sync.Pool{
	New: func() any { b := make([]byte, copyBufferSize); return &b },
}

// Put stores the object read from r under key, as store.Bucket documents.
// The object is written to a temporary file in the key's directory, fsynced,
// renamed over the final name, and the directory is fsynced; on any failure
// before the rename the temporary file and any directories left empty are
// removed, and a previous object stays intact.
//
// Put returns an error wrapping store.ErrInvalidKey for an unacceptable key
// or one that collides with a directory of other keys, store.ErrSizeMismatch
// when r delivers more or fewer than size bytes, the context's error when ctx
// ends first, the error r returns, and the file system's error otherwise.
func (b *Bucket) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	err := b.put(ctx, key, r, size)
	if err != nil && exhausted(err) && !errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

func (b *Bucket) put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := b.check(ctx, key); err != nil {
		return err
	}
	if size < -1 {
		return fmt.Errorf("store: put %q: invalid size %d", key, size)
	}
	f, err := b.createTemp(key)
	if err != nil {
		return err
	}
	final := b.path(key)
	committed := false
	defer func() {
		f.discard()
		if !committed {
			b.removeEmptyDirs(filepath.Dir(final))
		}
	}()

	if err := copyContext(ctx, f, r, key, size); err != nil {
		if errors.Is(err, store.ErrSizeMismatch) {
			return err
		}
		return fmt.Errorf("store: put %q: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("store: put %q: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: put %q: %w", key, err)
	}
	if err := b.install(f, key, true); err != nil {
		if fi, serr := os.Lstat(final); serr == nil && fi.IsDir() {
			return errPrefixCollision
		}
		return fmt.Errorf("store: put %q: %w", key, err)
	}
	committed = true
	// The object is in place; a failure here means only that its
	// durability is unknown, which the caller must not acknowledge.
	if err := b.syncs.sync(filepath.Dir(final)); err != nil {
		return fmt.Errorf("store: put %q: sync directory: %w", key, err)
	}
	return nil
}

// mkdirs creates the directories of dirKey ("." for none) below the root and
// fsyncs the parent of every directory on the way, so that the new object's
// directory entries are durable once Put returns. A directory that already
// existed is synced into its parent only once per Bucket (durableDirs): an
// fsync flushes the disk's cache even when nothing changed. mkdirs returns
// an error wrapping store.ErrInvalidKey when a directory's name is taken by
// an object.
func (b *Bucket) mkdirs(dirKey string) error {
	if dirKey == "." {
		return nil
	}
	cur := b.root
	for seg := range strings.SplitSeq(dirKey, "/") {
		parent := cur
		cur = filepath.Join(cur, seg)
		gen := b.dirs.generation()
		if err := os.Mkdir(cur, dirMode); err != nil {
			if !errors.Is(err, fs.ErrExist) {
				return err
			}
			fi, err := os.Stat(cur)
			if err != nil {
				return err
			}
			if !fi.IsDir() {
				return errPrefixCollision
			}
			if b.dirs.known(cur) {
				continue
			}
		}
		if err := b.syncs.sync(parent); err != nil {
			return err
		}
		b.dirs.mark(cur, gen)
	}
	return nil
}

// copyContext copies the object under key from r to w in chunks, checking ctx before each one. When
// size is not -1, it fails with store.ErrSizeMismatch as soon as r delivers
// more than size bytes, or at the end when it delivered fewer.
func copyContext(ctx context.Context, w io.Writer, r io.Reader, key string, size int64) error {
	bufp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bufp)
	buf := *bufp
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, rerr := r.Read(buf)
		if m > 0 {
			if size >= 0 && n+int64(m) > size {
				return fmt.Errorf("%w: put %q: declared %d bytes, got more", store.ErrSizeMismatch, key, size)
			}
			if _, err := w.Write(buf[:m]); err != nil {
				return err
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("read: %w", rerr)
		}
	}
	if size >= 0 && n != size {
		return fmt.Errorf("%w: put %q: declared %d bytes, got %d", store.ErrSizeMismatch, key, size, n)
	}
	return nil
}

// syncDir fsyncs a directory so that changes to its entries are durable
// (a variable so that tests can see which directories are synced).
var syncDir = syncDirOS

// syncDirOS fsyncs dir. Windows cannot sync directories, and does not need to.
func syncDirOS(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
