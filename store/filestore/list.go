package filestore

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sealgate/sealgate/store"
)

// List returns up to limit objects whose keys start with prefix and sort
// strictly after startAfter, in ascending byte order of their keys, as
// store.Bucket documents.
//
// List reads only the directories that can hold matching keys, starting at
// the deepest directory named by prefix, and stops as soon as it has limit
// objects. It skips temporary files. List returns the context's error when
// ctx ends, and the file system's error when a directory cannot be read.
func (b *Bucket) List(ctx context.Context, prefix, startAfter string, limit int) ([]store.ObjectInfo, error) {
	if b.closed.Load() {
		return nil, errClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	base := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		base = prefix[:i]
		// Every key that starts with prefix starts with base's segments,
		// so when base is not a valid key no key can match; this also
		// keeps the walk inside the root.
		if validateKey(base) != nil {
			return []store.ObjectInfo{}, nil
		}
	}
	l := &lister{
		ctx:        ctx,
		root:       b.root,
		prefix:     prefix,
		startAfter: startAfter,
		limit:      limit,
		out:        []store.ObjectInfo{},
	}
	if err := l.walk(base); err != nil {
		return nil, err
	}
	return l.out, nil
}

// readDir reads a directory's entries; tests replace it to count reads.
var readDir = os.ReadDir

// lister walks the directory tree in the byte order of keys, collecting
// matching objects until it has limit of them.
type lister struct {
	ctx        context.Context
	root       string
	prefix     string
	startAfter string
	limit      int
	out        []store.ObjectInfo
}

// entry is one directory entry with the string it sorts by: its name for a
// file and its name followed by a slash for a directory.
type entry struct {
	fs.DirEntry
	sortKey string
}

// walk lists the directory of dirKey ("" for the root). fs.WalkDir is not
// used because it orders a directory's entries by name, while keys must be
// ordered by their bytes: the file "a-b" sorts before the keys "a/..." of the
// directory "a" because '-' (0x2d) is below '/' (0x2f). Sorting directories
// by their name plus a slash gives exactly the byte order of the keys.
func (l *lister) walk(dirKey string) error {
	if err := l.ctx.Err(); err != nil {
		return err
	}
	dir := l.root
	keyPrefix := ""
	if dirKey != "" {
		dir = filepath.Join(l.root, filepath.FromSlash(dirKey))
		keyPrefix = dirKey + "/"
	}
	dirEntries, err := readDir(dir)
	if isNotExist(err) {
		// The directory is missing, a file, or was removed by a
		// concurrent Delete: it holds no objects.
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: list: %w", err)
	}
	entries := make([]entry, 0, len(dirEntries))
	for _, d := range dirEntries {
		name := d.Name()
		if strings.HasPrefix(name, store.TempPrefix) {
			continue
		}
		switch {
		case d.IsDir():
			entries = append(entries, entry{d, name + "/"})
		case d.Type().IsRegular():
			entries = append(entries, entry{d, name})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.sortKey, b.sortKey) })

	for _, e := range entries {
		if len(l.out) >= l.limit {
			return nil
		}
		key := keyPrefix + e.sortKey
		if e.IsDir() {
			if !l.mayHoldMatches(key) {
				continue
			}
			if err := l.walk(strings.TrimSuffix(key, "/")); err != nil {
				return err
			}
			continue
		}
		if !strings.HasPrefix(key, l.prefix) || key <= l.startAfter {
			continue
		}
		info, err := e.Info()
		if isNotExist(err) {
			continue // deleted since the directory was read
		}
		if err != nil {
			return fmt.Errorf("store: list: %w", err)
		}
		l.out = append(l.out, store.ObjectInfo{Key: key, Size: info.Size(), ModTime: info.ModTime()})
	}
	return nil
}

// mayHoldMatches reports whether the directory whose keys all start with
// dirPrefix (ending in a slash) can hold a key that starts with the listing's
// prefix and sorts after startAfter.
func (l *lister) mayHoldMatches(dirPrefix string) bool {
	if !strings.HasPrefix(dirPrefix, l.prefix) && !strings.HasPrefix(l.prefix, dirPrefix) {
		return false
	}
	// Every key below the directory is longer than dirPrefix and starts
	// with it. When startAfter is at least dirPrefix without starting with
	// it, startAfter exceeds dirPrefix within its length, and so exceeds
	// every key below the directory.
	if l.startAfter >= dirPrefix && !strings.HasPrefix(l.startAfter, dirPrefix) {
		return false
	}
	return true
}
