package filestore

import (
	"fmt"
	"math/rand/v2"
	"os"

	"golang.org/x/sys/unix"

	"github.com/sealgate/sealgate/store"
)

// openDir opens dir as a handle for the *at calls below (O_PATH).
func openDir(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// openUnnamedAt opens a new unnamed file in dir (O_TMPFILE). It fails with
// ENOENT when dir was removed (ext4 says EPERM then).
func openUnnamedAt(dir *os.File) (*os.File, error) {
	fd, err := unix.Openat(int(dir.Fd()), ".", unix.O_RDWR|unix.O_TMPFILE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		var st unix.Stat_t
		if unix.Fstat(int(dir.Fd()), &st) == nil && st.Nlink == 0 {
			err = unix.ENOENT
		}
		return nil, &os.PathError{Op: "open", Path: dir.Name(), Err: err}
	}
	return os.NewFile(uintptr(fd), dir.Name()), nil
}

// linkUnnamedAt gives f (from openUnnamedAt) the name name in dir, failing
// when name exists, or with ENOENT when dir was removed. Linking a file by
// descriptor (AT_EMPTY_PATH) needs a privilege; linking its /proc/self/fd
// entry does not.
func linkUnnamedAt(f, dir *os.File, name string) error {
	err := unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), int(dir.Fd()), name, unix.AT_SYMLINK_FOLLOW)
	if err != nil {
		return &os.LinkError{Op: "link", Old: "(unnamed)", New: dir.Name() + "/" + name, Err: err}
	}
	return nil
}

// renameAt renames from over to, both in dir.
func renameAt(dir *os.File, from, to string) error {
	if err := unix.Renameat(int(dir.Fd()), from, int(dir.Fd()), to); err != nil {
		return &os.LinkError{Op: "rename", Old: dir.Name() + "/" + from, New: dir.Name() + "/" + to, Err: err}
	}
	return nil
}

// removeAt removes name from dir.
func removeAt(dir *os.File, name string) {
	unix.Unlinkat(int(dir.Fd()), name, 0)
}

// unnamedFilesWork reports whether dir's file system makes and links
// unnamed files (not every one has O_TMPFILE, and /proc may be missing).
func unnamedFilesWork(dir string) bool {
	d, err := openDir(dir)
	if err != nil {
		return false
	}
	defer d.Close()
	f, err := openUnnamedAt(d)
	if err != nil {
		return false
	}
	defer f.Close()
	name := fmt.Sprintf("%s-probe-%d", store.TempPrefix, rand.Uint64())
	if linkUnnamedAt(f, d, name) != nil {
		return false
	}
	return unix.Unlinkat(int(d.Fd()), name, 0) == nil
}
