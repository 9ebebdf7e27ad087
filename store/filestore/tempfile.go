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
// every other write there (every record of an account shares one), and
// one that a crash interrupts leaves nothing behind.
type tempFile struct {
	*os.File
	name string // "" when unnamed
}

// createTemp creates the directories of key and a temporary file for it.
// It retries when a concurrent Delete removes a directory it has just
// made, which happens only while that directory is empty.
func (b *Bucket) createTemp(key string) (*tempFile, error) {
	dirKey := path.Dir(key)
	dir := filepath.Dir(b.path(key))
	for attempt := 1; ; attempt++ {
		err := b.mkdirs(dirKey)
		if err == nil {
			if b.unnamed {
				var f *os.File
				if f, err = openUnnamed(dir); err == nil {
					return &tempFile{File: f}, nil
				}
			} else {
				var f *os.File
				if f, err = os.CreateTemp(dir, store.TempPrefix+"-*"); err == nil {
					return &tempFile{File: f, name: f.Name()}, nil
				}
			}
		}
		if errors.Is(err, store.ErrInvalidKey) {
			return nil, err
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == mkdirAttempts {
			return nil, fmt.Errorf("store: put %q: %w", key, err)
		}
	}
}

// install gives t, written, synced and closed, the name of key: replacing
// an object there when replace is set (a rename, atomic), else failing with
// an error wrapping fs.ErrExist when key exists. The caller syncs the
// directory.
func (b *Bucket) install(t *tempFile, key string, replace bool) error {
	final := b.path(key)
	if t.name != "" {
		if replace {
			return os.Rename(t.name, final)
		}
		return os.Link(t.name, final)
	}
	for attempt := 1; ; attempt++ {
		err := linkUnnamed(t.File, final)
		if errors.Is(err, fs.ErrExist) && replace {
			// Name it in the directory, then rename that over the object.
			var tmp string
			if tmp, err = b.nameUnnamed(t.File, filepath.Dir(final)); err == nil {
				if err = os.Rename(tmp, final); err != nil {
					os.Remove(tmp)
				}
			}
		}
		// The directory was empty while the file was written, so a
		// concurrent Delete may have removed it: make it again.
		if !errors.Is(err, fs.ErrNotExist) || attempt == mkdirAttempts {
			return err
		}
		if err := b.mkdirs(path.Dir(key)); err != nil {
			return err
		}
	}
}

// nameUnnamed links an unnamed file under a fresh temporary name in dir.
func (b *Bucket) nameUnnamed(f *os.File, dir string) (string, error) {
	for {
		name := filepath.Join(dir, fmt.Sprintf("%s-%d", store.TempPrefix, randomSuffix()))
		err := linkUnnamed(f, name)
		if !errors.Is(err, fs.ErrExist) {
			return name, err
		}
	}
}

// discard removes what is left of a temporary file that was not installed.
// A named one's name is removed; an unnamed one needs only closing.
func (t *tempFile) discard() {
	t.Close()
	if t.name != "" {
		os.Remove(t.name)
	}
}

func randomSuffix() uint64 { return rand.Uint64() }
