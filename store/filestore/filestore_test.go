package filestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/sealgate/sealgate/store"
	"github.com/sealgate/sealgate/store/storetest"
)

// openTemp opens a bucket in a fresh temporary directory and, when the test
// ends, checks that no temporary file was left behind.
func openTemp(t *testing.T) *Bucket {
	t.Helper()
	b, err := Open(filepath.Join(t.TempDir(), "bucket"))
	if err != nil {
		t.Fatalf("Open() = %v, want nil", err)
	}
	t.Cleanup(func() {
		if temps := tempFiles(t, b.Dir()); len(temps) > 0 {
			t.Errorf("temporary files left: %q, want none", temps)
		}
	})
	return b
}

// tempFiles returns the temporary files under dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), store.TempPrefix) {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", dir, err)
	}
	return found
}

// tempModes runs test once with each kind of temporary file a bucket can
// write: unnamed where the file system has them (Linux), and named.
func tempModes(t *testing.T, test func(t *testing.T, open func(*testing.T) *Bucket)) {
	t.Run("unnamed temporary files", func(t *testing.T) {
		if !unnamedFilesWork(t.TempDir()) {
			t.Skip("no unnamed files here")
		}
		test(t, openTemp)
	})
	t.Run("named temporary files", func(t *testing.T) {
		test(t, func(t *testing.T) *Bucket {
			b := openTemp(t)
			b.unnamed = false
			return b
		})
	})
}

func TestConformance(t *testing.T) {
	tempModes(t, func(t *testing.T, open func(*testing.T) *Bucket) {
		storetest.RunConformance(t, func(t *testing.T) store.Bucket { return open(t) })
	})
}

// TestUnnamedTempFilesOnLinux: on Linux an object being written has no
// name until it is complete, so a crash in the middle leaves nothing.
func TestUnnamedTempFilesOnLinux(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("unnamed files are a Linux feature")
	}
	b := openTemp(t)
	if !b.unnamed {
		t.Fatal("a bucket on Linux does not use unnamed temporary files")
	}
	if err := b.Put(t.Context(), "a/first", strings.NewReader("1"), 1); err != nil {
		t.Fatal(err)
	}
	var seen []string
	r := io.MultiReader(strings.NewReader("half"), readerFunc(func([]byte) (int, error) {
		entries, err := os.ReadDir(filepath.Join(b.Dir(), "a"))
		if err != nil {
			return 0, err
		}
		for _, e := range entries {
			seen = append(seen, e.Name())
		}
		return 0, io.EOF
	}), strings.NewReader("done"))
	if err := b.Put(t.Context(), "a/second", r, 8); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, []string{"first"}) {
		t.Errorf("while a/second was written, a held %q; want only [first]", seen)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestFailedPutLeavesNothing(t *testing.T) {
	tempModes(t, testFailedPutLeavesNothing)
}

func testFailedPutLeavesNothing(t *testing.T, open func(*testing.T) *Bucket) {
	b := open(t)
	errRead := errors.New("read failed")
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	cases := []struct {
		name string
		put  func(key string) error
	}{
		{"reader error", func(key string) error {
			r := io.MultiReader(bytes.NewReader(make([]byte, 600<<10)), iotest.ErrReader(errRead))
			return b.Put(t.Context(), key, r, -1)
		}},
		{"size mismatch", func(key string) error {
			return b.Put(t.Context(), key, strings.NewReader("12345"), 4)
		}},
		{"cancelled", func(key string) error {
			return b.Put(cancelled, key, strings.NewReader("12345"), 5)
		}},
	}
	for _, c := range cases {
		if err := c.put("new/dirs/object"); err == nil {
			t.Errorf("Put with %s = nil, want an error", c.name)
		}
		if temps := tempFiles(t, b.Dir()); len(temps) > 0 {
			t.Errorf("after Put with %s: temporary files %q, want none", c.name, temps)
		}
		if _, err := os.Stat(filepath.Join(b.Dir(), "new")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after Put with %s: Stat(new) = %v, want the new directory removed", c.name, err)
		}
	}
	if err := b.Put(t.Context(), "x", iotest.ErrReader(errRead), -1); !errors.Is(err, errRead) {
		t.Errorf("Put with a failing reader = %v, want an error wrapping %v", err, errRead)
	}
}

func TestFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no Unix file modes")
	}
	root := filepath.Join(t.TempDir(), "new", "root")
	b, err := Open(root)
	if err != nil {
		t.Fatalf("Open(%q) = %v, want nil", root, err)
	}
	if err := b.Put(t.Context(), "x/y/z", strings.NewReader("data"), 4); err != nil {
		t.Fatalf("Put() = %v, want nil", err)
	}
	want := map[string]fs.FileMode{
		root:                         fs.ModeDir | 0o700,
		filepath.Join(root, "x"):     fs.ModeDir | 0o700,
		filepath.Join(root, "x/y"):   fs.ModeDir | 0o700,
		filepath.Join(root, "x/y/z"): 0o600,
	}
	for p, mode := range want {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("Stat(%q) = %v, want nil", p, err)
		}
		if fi.Mode() != mode {
			t.Errorf("mode of %s = %v, want %v", p, fi.Mode(), mode)
		}
	}
}

func TestPrefixCollision(t *testing.T) {
	b := openTemp(t)
	ctx := t.Context()
	if err := b.Put(ctx, "a", strings.NewReader("a"), 1); err != nil {
		t.Fatalf("Put(a) = %v, want nil", err)
	}
	if err := b.Put(ctx, "a/b", strings.NewReader("b"), 1); !errors.Is(err, store.ErrInvalidKey) {
		t.Errorf("Put(a/b) with object a = %v, want ErrInvalidKey", err)
	}
	if err := b.Put(ctx, "c/d", strings.NewReader("d"), 1); err != nil {
		t.Fatalf("Put(c/d) = %v, want nil", err)
	}
	if err := b.Put(ctx, "c", strings.NewReader("c"), 1); !errors.Is(err, store.ErrInvalidKey) {
		t.Errorf("Put(c) with object c/d = %v, want ErrInvalidKey", err)
	}
	infos, err := b.List(ctx, "", "", 0)
	if err != nil {
		t.Fatalf("List() = %v, want nil", err)
	}
	var keys []string
	for _, info := range infos {
		keys = append(keys, info.Key)
	}
	if want := []string{"a", "c/d"}; !slices.Equal(keys, want) {
		t.Errorf("List() = %q, want %q", keys, want)
	}
}

func TestSegmentLength(t *testing.T) {
	b := openTemp(t)
	ctx := t.Context()
	long := "d/" + strings.Repeat("n", maxSegmentLen+1)
	if err := b.Put(ctx, long, strings.NewReader("x"), 1); !errors.Is(err, store.ErrInvalidKey) {
		t.Errorf("Put(256-byte segment) = %v, want ErrInvalidKey", err)
	}
	if _, err := b.Stat(ctx, long); !errors.Is(err, store.ErrInvalidKey) {
		t.Errorf("Stat(256-byte segment) = %v, want ErrInvalidKey", err)
	}
	longest := "d/" + strings.Repeat("n", maxSegmentLen)
	if err := b.Put(ctx, longest, strings.NewReader("x"), 1); err != nil {
		t.Errorf("Put(255-byte segment) = %v, want nil", err)
	}
}

func TestDeleteRemovesEmptyDirs(t *testing.T) {
	b := openTemp(t)
	ctx := t.Context()
	for _, key := range []string{"a/b/c", "a/d"} {
		if err := b.Put(ctx, key, strings.NewReader(key), int64(len(key))); err != nil {
			t.Fatalf("Put(%q) = %v, want nil", key, err)
		}
	}
	exists := func(rel string) bool {
		_, err := os.Stat(filepath.Join(b.Dir(), filepath.FromSlash(rel)))
		return err == nil
	}
	if err := b.Delete(ctx, "a/b/c"); err != nil {
		t.Fatalf("Delete(a/b/c) = %v, want nil", err)
	}
	if exists("a/b") || !exists("a") {
		t.Errorf("after Delete(a/b/c): a/b exists %t, a exists %t; want false, true", exists("a/b"), exists("a"))
	}
	if err := b.Delete(ctx, "a/d"); err != nil {
		t.Fatalf("Delete(a/d) = %v, want nil", err)
	}
	if exists("a") {
		t.Errorf("after Delete(a/d): a exists, want it removed")
	}
	if _, err := os.Stat(b.Dir()); err != nil {
		t.Errorf("Stat(root) = %v, want the root kept", err)
	}
}

func TestGetReaderStopsOnCancel(t *testing.T) {
	b := openTemp(t)
	if err := b.Put(t.Context(), "k", bytes.NewReader(make([]byte, 1000)), 1000); err != nil {
		t.Fatalf("Put() = %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	rc, err := b.Get(ctx, "k", 0, -1)
	if err != nil {
		t.Fatalf("Get() = %v, want nil", err)
	}
	defer rc.Close()
	cancel()
	if _, err := rc.Read(make([]byte, 10)); !errors.Is(err, context.Canceled) {
		t.Errorf("Read after cancel = %v, want context.Canceled", err)
	}
}

func TestOpenAndClose(t *testing.T) {
	if _, err := Open(""); err == nil {
		t.Errorf("Open(\"\") = nil error, want an error")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file); err == nil {
		t.Errorf("Open(a file) = nil error, want an error")
	}
	b := openTemp(t)
	if err := b.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	if err := b.Put(t.Context(), "k", strings.NewReader("x"), 1); err == nil {
		t.Errorf("Put after Close = nil error, want an error")
	}
	if _, err := b.List(t.Context(), "", "", 0); err == nil {
		t.Errorf("List after Close = nil error, want an error")
	}
}

func TestOutOfDescriptorsOrSpaceIsUnavailable(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOSPC} {
		err := opError("get", "k", &fs.PathError{Op: "open", Path: "/x", Err: errno})
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%v: got %v, want ErrUnavailable (retry later), not an internal error", errno, err)
		}
	}
	if err := opError("get", "k", &fs.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}); errors.Is(err, store.ErrUnavailable) {
		t.Errorf("EACCES: got %v, want no unavailable class", err)
	}
}

// TestDirectoriesAreSyncedOncePerBucket checks which directories a write
// fsyncs: the parent of every directory on the way the first time, and
// after that only the object's own directory, until a directory is removed
// and made again. Every fsync flushes the disk's cache, so the ones skipped
// set how fast small objects are stored.
func TestDirectoriesAreSyncedOncePerBucket(t *testing.T) {
	tempModes(t, testDirectoriesAreSyncedOncePerBucket)
}

func testDirectoriesAreSyncedOncePerBucket(t *testing.T, open func(*testing.T) *Bucket) {
	b := open(t)
	ctx := t.Context()
	var synced []string
	syncDir = func(dir string) error {
		rel, err := filepath.Rel(b.Dir(), dir)
		if err != nil {
			t.Fatalf("synced %q, outside the bucket", dir)
		}
		synced = append(synced, filepath.ToSlash(rel))
		return syncDirOS(dir)
	}
	t.Cleanup(func() { syncDir = syncDirOS })
	put := func(b *Bucket, key string, want ...string) {
		t.Helper()
		synced = nil
		if err := b.Put(ctx, key, strings.NewReader(key), int64(len(key))); err != nil {
			t.Fatalf("Put(%q) = %v, want nil", key, err)
		}
		if !slices.Equal(synced, want) {
			t.Errorf("Put(%q) synced %q, want %q", key, synced, want)
		}
	}
	put(b, "a/b/x", ".", "a", "a/b")
	put(b, "a/b/y", "a/b")
	put(b, "a/c/w", "a", "a/c")
	synced = nil
	if _, err := b.Swap(ctx, "a/b/z", []byte("z"), ""); err != nil {
		t.Fatalf("Swap(a/b/z, create) = %v, want nil", err)
	}
	if !slices.Equal(synced, []string{"a/b"}) {
		t.Errorf("Swap(a/b/z, create) synced %q, want [a/b]", synced)
	}
	for _, key := range []string{"a/b/x", "a/b/y", "a/b/z"} {
		if err := b.Delete(ctx, key); err != nil {
			t.Fatalf("Delete(%q) = %v, want nil", key, err)
		}
	}
	// a/b is gone and made again by another writer, which has not synced a
	// yet: the Put must sync a itself.
	if err := os.Mkdir(filepath.Join(b.Dir(), "a", "b"), dirMode); err != nil {
		t.Fatal(err)
	}
	put(b, "a/b/v", "a", "a/b")
	// Another Bucket on the folder (another process) knows nothing.
	other, err := Open(b.Dir())
	if err != nil {
		t.Fatal(err)
	}
	put(other, "a/b/u", ".", "a", "a/b")
}

// TestDirectoryMarkAcrossARemovalIsDropped: a directory synced before it
// was removed is not the one a later mkdir finds.
func TestDirectoryMarkAcrossARemovalIsDropped(t *testing.T) {
	var d durableDirs
	gen := d.generation()
	if err := d.remove("/x/a", func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	d.mark("/x/a", gen)
	if d.known("/x/a") {
		t.Error("a mark taken before a removal was kept")
	}
	d.mark("/x/a", d.generation())
	if !d.known("/x/a") {
		t.Error("a mark taken after the removal was dropped")
	}
}

// TestDirectorySyncsAreGroupCommits: callers that arrive while a
// directory's fsync runs are all answered by the next one, which starts
// after they arrived; none is answered by the one already running.
func TestDirectorySyncsAreGroupCommits(t *testing.T) {
	var d dirSyncs
	started := make(chan int, 16)
	release := make(chan error)
	calls := 0
	syncDir = func(dir string) error {
		calls++ // one sync of a directory at a time
		started <- calls
		return <-release
	}
	t.Cleanup(func() { syncDir = syncDirOS })
	first := make(chan error, 1)
	go func() { first <- d.sync("/x/d") }()
	<-started
	const joiners = 5
	results := make(chan error, joiners)
	for range joiners {
		go func() { results <- d.sync("/x/d") }()
	}
	// Wait until all of them joined the next round.
	deadline := time.Now().Add(10 * time.Second)
	for {
		d.mu.Lock()
		n := 0
		if s := d.m["/x/d"]; s != nil && s.next != nil {
			n = s.next.joined
		}
		d.mu.Unlock()
		if n == joiners {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d callers joined the next sync", n, joiners)
		}
		runtime.Gosched()
	}
	release <- nil
	if err := <-first; err != nil {
		t.Fatalf("first sync = %v, want nil", err)
	}
	if n := <-started; n != 2 {
		t.Fatalf("sync %d started, want 2", n)
	}
	select {
	case err := <-results:
		t.Fatalf("a caller that arrived during the first sync returned (%v) before the second ended", err)
	default:
	}
	boom := errors.New("disk gone")
	release <- boom
	for range joiners {
		if err := <-results; !errors.Is(err, boom) {
			t.Errorf("joined sync = %v, want %v", err, boom)
		}
	}
	if calls != 2 {
		t.Errorf("%d fsyncs for 1 + %d callers, want 2", calls, joiners)
	}
}

// TestPutWhileItsDirectoryIsRemoved: the last other object of a directory
// is deleted while an object is written there (an unnamed file does not
// keep the directory from being removed); the Put makes the directory again.
func TestPutWhileItsDirectoryIsRemoved(t *testing.T) {
	tempModes(t, func(t *testing.T, open func(*testing.T) *Bucket) {
		b := open(t)
		ctx := t.Context()
		if err := b.Put(ctx, "a/b/y", strings.NewReader("y"), 1); err != nil {
			t.Fatal(err)
		}
		r := io.MultiReader(strings.NewReader("half"), readerFunc(func([]byte) (int, error) {
			if err := b.Delete(ctx, "a/b/y"); err != nil {
				return 0, err
			}
			return 0, io.EOF
		}), strings.NewReader("done"))
		if err := b.Put(ctx, "a/b/x", r, 8); err != nil {
			t.Fatalf("Put(a/b/x) while a/b/y was deleted = %v, want nil", err)
		}
		if got, err := os.ReadFile(filepath.Join(b.Dir(), "a", "b", "x")); err != nil || string(got) != "halfdone" {
			t.Errorf("a/b/x = %q, %v; want halfdone", got, err)
		}
	})
}

// TestPutIntoARecreatedDirectorySyncsItsEntry: while an unnamed file is
// written, its directory is removed (a Delete of its last object) and made
// again by another writer that has not yet synced the parent. The Put must
// not link into the new directory on the strength of the old one's sync: it
// syncs the parent itself before it answers.
func TestPutIntoARecreatedDirectorySyncsItsEntry(t *testing.T) {
	b := openTemp(t)
	if !b.unnamed {
		t.Skip("named temporary files keep their directory")
	}
	ctx := t.Context()
	if err := b.Put(ctx, "a/y", strings.NewReader("y"), 1); err != nil {
		t.Fatal(err)
	}
	var synced []string
	syncDir = func(dir string) error {
		rel, _ := filepath.Rel(b.Dir(), dir)
		synced = append(synced, filepath.ToSlash(rel))
		return syncDirOS(dir)
	}
	t.Cleanup(func() { syncDir = syncDirOS })
	r := io.MultiReader(strings.NewReader("half"), readerFunc(func([]byte) (int, error) {
		if err := b.Delete(ctx, "a/y"); err != nil {
			return 0, err
		}
		if err := os.Mkdir(filepath.Join(b.Dir(), "a"), dirMode); err != nil {
			return 0, err // a was not removed: the test sets up nothing
		}
		synced = nil
		return 0, io.EOF
	}), strings.NewReader("done"))
	if err := b.Put(ctx, "a/x", r, 8); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(synced, ".") {
		t.Errorf("Put(a/x) into a remade a synced %q, want the root (a's parent) among them", synced)
	}
	if got, err := os.ReadFile(filepath.Join(b.Dir(), "a", "x")); err != nil || string(got) != "halfdone" {
		t.Errorf("a/x = %q, %v; want halfdone", got, err)
	}
}

// TestWritesCloseTheirDescriptors: a write holds a file and, when the file
// is unnamed, its directory open; both are closed once it ends, stored or
// not.
func TestWritesCloseTheirDescriptors(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts /proc/self/fd")
	}
	tempModes(t, func(t *testing.T, open func(*testing.T) *Bucket) {
		b := open(t)
		ctx := t.Context()
		fds := func() int {
			entries, err := os.ReadDir("/proc/self/fd")
			if err != nil {
				t.Fatal(err)
			}
			return len(entries)
		}
		before := fds()
		for i := range 50 {
			key := fmt.Sprintf("d/%d", i)
			if err := b.Put(ctx, key, strings.NewReader("x"), 1); err != nil {
				t.Fatal(err)
			}
			if err := b.Put(ctx, key, strings.NewReader("y"), 1); err != nil { // replaces
				t.Fatal(err)
			}
			if _, err := b.Swap(ctx, key+"-c", []byte("z"), ""); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Swap(ctx, key+"-c", []byte("z"), ""); !errors.Is(err, store.ErrPrecondition) {
				t.Fatalf("second create of %s-c = %v, want ErrPrecondition", key, err)
			}
			b.Put(ctx, key+"-short", strings.NewReader("x"), 2) // fails: size mismatch
		}
		if after := fds(); after > before+5 {
			t.Errorf("%d descriptors open after 250 writes, %d before", after, before)
		}
	})
}

// TestDirectoriesChangedByAnotherProcess: another process (another Bucket
// on the folder) removes directories this bucket made and synced, or puts
// an object in the place of one; the next Put makes them again, or reports
// the collision.
func TestDirectoriesChangedByAnotherProcess(t *testing.T) {
	tempModes(t, func(t *testing.T, open func(*testing.T) *Bucket) {
		b := open(t)
		other, err := Open(b.Dir())
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		put := func(b *Bucket, key string) error {
			return b.Put(ctx, key, strings.NewReader(key), int64(len(key)))
		}
		if err := put(b, "a/b/x"); err != nil {
			t.Fatal(err)
		}
		if err := other.Delete(ctx, "a/b/x"); err != nil { // removes a/b and a
			t.Fatal(err)
		}
		if err := put(b, "a/b/y"); err != nil {
			t.Fatalf("Put(a/b/y) after another process removed a/b = %v, want nil", err)
		}
		if _, err := b.Swap(ctx, "a/b/z", []byte("z"), ""); err != nil {
			t.Fatalf("create a/b/z = %v, want nil", err)
		}
		for _, key := range []string{"a/b/y", "a/b/z"} {
			if err := other.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
		if err := put(other, "a/b"); err != nil { // an object where b made a directory
			t.Fatal(err)
		}
		if err := put(b, "a/b/w"); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Put(a/b/w) with an object at a/b = %v, want ErrInvalidKey", err)
		}
	})
}
