package filestore

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/sealgate/sealgate/store"
)

// openUnnamed opens a new unnamed file in dir (O_TMPFILE).
func openUnnamed(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_RDWR|unix.O_TMPFILE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// linkUnnamed gives f (opened by openUnnamed) the name name, failing when
// name exists. Linking a file by descriptor (AT_EMPTY_PATH) needs a
// privilege; linking its /proc/self/fd entry does not.
func linkUnnamed(f *os.File, name string) error {
	err := unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.AT_FDCWD, name, unix.AT_SYMLINK_FOLLOW)
	if err != nil {
		return &os.LinkError{Op: "link", Old: f.Name(), New: name, Err: err}
	}
	return nil
}

// unnamedFilesWork reports whether dir's file system makes and links
// unnamed files (not every one has O_TMPFILE, and /proc may be missing).
func unnamedFilesWork(dir string) bool {
	f, err := openUnnamed(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	name := filepath.Join(dir, fmt.Sprintf("%s-probe-%d", store.TempPrefix, randomSuffix()))
	if linkUnnamed(f, name) != nil {
		return false
	}
	return os.Remove(name) == nil
}
