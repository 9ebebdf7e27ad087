package filestore

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"

	"github.com/sealgate/sealgate/store"
)

// tempFile is an object being written: an unnamed file (O_TMPFILE on
// Linux) where the file system allows, else a named temporary file in the
// object's directory. An unnamed file takes no directory entry until it is
// installed, so writing it does not contend for the directory's lock with
// every other write there (every record of an account shares one), and a
// crash while it is written leaves nothing behind.
//
// An unnamed file does not keep its directory from being removed (a
// concurrent Delete of the directory's last object removes it), so it is
// installed through a descriptor of the directory instance whose entries
// mkdirs made durable (dir): if that directory is removed meanwhile, the
// link fails and install looks the directory up again, instead of linking
// into a new directory of the same name whose own entry another writer may
// not have synced yet.
type tempFile struct {
	*os.File
	name   string   // "" when unnamed
	dir    *os.File // unnamed only: the directory, opened with O_PATH
	dirKey string   // the key's directory ("." for the root)
	base   string   // the object's file name
}

// createTemp creates the directories of key and a temporary file for it.
// It retries when a concurrent Delete removes a directory it has just
// made, which happens only while that directory is empty.
func (b *Bucket) createTemp(key string) (*tempFile, error) {
	t := &tempFile{dirKey: path.Dir(key), base: path.Base(key)}
	dir := filepath.Dir(b.path(key))
	for attempt := 1; ; attempt++ {
		var err error
		if b.unnamed {
			if t.dir, err = b.openKeyDir(t.dirKey, dir); err == nil {
				if t.File, err = openUnnamedAt(t.dir); err != nil {
					t.dir.Close()
				}
			}
		} else if err = b.mkdirs(t.dirKey); err == nil {
			if t.File, err = os.CreateTemp(dir, store.TempPrefix+"-*"); err == nil {
				t.name = t.File.Name()
			}
		}
		if err == nil {
			return t, nil
		}
		if errors.Is(err, store.ErrInvalidKey) {
			return nil, err
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == mkdirAttempts {
			return nil, fmt.Errorf("store: put %q: %w", key, err)
		}
	}
}

// openKeyDir makes the directories of dirKey durable (mkdirs) and opens
// the last one. mkdirs trusts directories this bucket synced before; if
// one was removed meanwhile, the directory opened may be a new one whose
// entry its maker has not synced yet, so every ancestor is synced here.
func (b *Bucket) openKeyDir(dirKey, dir string) (*os.File, error) {
	gen := b.dirs.generation()
	if err := b.mkdirs(dirKey); err != nil {
		return nil, err
	}
	d, err := openDir(dir)
	if err != nil {
		return nil, err
	}
	if b.dirs.generation() != gen {
		if err := b.syncAncestors(dirKey); err != nil {
			d.Close()
			return nil, err
		}
	}
	return d, nil
}

// syncAncestors fsyncs the parent of every directory of dirKey.
func (b *Bucket) syncAncestors(dirKey string) error {
	if dirKey == "." {
		return nil
	}
	cur := dirKey
	for cur != "." {
		cur = path.Dir(cur)
		if err := b.syncs.sync(filepath.Join(b.root, filepath.FromSlash(cur))); err != nil {
			return err
		}
	}
	return nil
}

// install gives t, written and synced, the name of key: replacing an
// object there when replace is set (a rename, atomic), else failing with an
// error wrapping fs.ErrExist when key exists. The caller syncs the
// directory, then closes t.
func (b *Bucket) install(t *tempFile, key string, replace bool) error {
	final := b.path(key)
	if t.name != "" {
		if replace {
			if err := os.Rename(t.name, final); err != nil {
				return err
			}
			t.name = "" // it is the object's name now
			return nil
		}
		return os.Link(t.name, final) // discard removes the temporary name
	}
	for attempt := 1; ; attempt++ {
		err := linkUnnamedAt(t.File, t.dir, t.base)
		if errors.Is(err, fs.ErrExist) && replace {
			// Name it in the directory, then rename that over the object.
			// The name keeps the directory, so nothing here is retried: a
			// file whose only name was removed cannot be linked again.
			tmp, err := nameUnnamedAt(t.File, t.dir)
			if err != nil {
				return err
			}
			if err := renameAt(t.dir, tmp, t.base); err != nil {
				removeAt(t.dir, tmp)
				return err
			}
			return nil
		}
		// ENOENT: the directory was removed since it was opened.
		if !errors.Is(err, fs.ErrNotExist) || attempt == mkdirAttempts {
			return err
		}
		d, err := b.openKeyDir(t.dirKey, filepath.Dir(final))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && attempt < mkdirAttempts {
				continue // removed again while it was made: look again
			}
			return err
		}
		t.dir.Close()
		t.dir = d
	}
}

// nameUnnamedAt links an unnamed file under a fresh temporary name in dir.
func nameUnnamedAt(f, dir *os.File) (string, error) {
	for {
		name := fmt.Sprintf("%s-%d", store.TempPrefix, rand.Uint64())
		err := linkUnnamedAt(f, dir, name)
		if !errors.Is(err, fs.ErrExist) {
			return name, err
		}
	}
}

// discard closes a temporary file, installed or not, and removes what is
// left of it: a named one's temporary name (not installed, or installed by
// a link), and the directory's descriptor.
func (t *tempFile) discard() {
	t.Close()
	if t.name != "" {
		os.Remove(t.name)
	}
	if t.dir != nil {
		t.dir.Close()
	}
}
