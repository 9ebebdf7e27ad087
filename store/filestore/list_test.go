package filestore

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// putKeys stores each key with its own name as content.
func putKeys(t *testing.T, b *Bucket, keys ...string) {
	t.Helper()
	for _, key := range keys {
		if err := b.Put(t.Context(), key, strings.NewReader(key), int64(len(key))); err != nil {
			t.Fatalf("Put(%q) = %v, want nil", key, err)
		}
	}
}

// list returns the keys of one List call.
func list(t *testing.T, b *Bucket, prefix, startAfter string, limit int) []string {
	t.Helper()
	infos, err := b.List(t.Context(), prefix, startAfter, limit)
	if err != nil {
		t.Fatalf("List(%q, %q, %d) = %v, want nil", prefix, startAfter, limit, err)
	}
	keys := []string{}
	for _, info := range infos {
		keys = append(keys, info.Key)
	}
	return keys
}

func checkKeys(t *testing.T, b *Bucket, prefix, startAfter string, limit int, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := list(t, b, prefix, startAfter, limit); !slices.Equal(got, want) {
		t.Errorf("List(%q, %q, %d) = %q, want %q", prefix, startAfter, limit, got, want)
	}
}

// TestListDashBeforeSlash pins the case where the order of a directory walk
// differs from key order: the directory "a" sorts before the file "a-b" by
// name, but the key "a/x" sorts after "a-b" because '/' (0x2f) is above '-'
// (0x2d).
func TestListDashBeforeSlash(t *testing.T) {
	b := openTemp(t)
	putKeys(t, b, "a/x", "a-b", "a.c", "a0", "a/y/z", "a/y-")
	checkKeys(t, b, "", "", 0, "a-b", "a.c", "a/x", "a/y-", "a/y/z", "a0")
	checkKeys(t, b, "", "", 1, "a-b")
	checkKeys(t, b, "", "a-b", 1, "a.c")
	checkKeys(t, b, "", "a.c", 1, "a/x")
	checkKeys(t, b, "", "a/x", 2, "a/y-", "a/y/z")
	checkKeys(t, b, "", "a/y/z", 1, "a0")
	checkKeys(t, b, "a", "a-", 0, "a-b", "a.c", "a/x", "a/y-", "a/y/z", "a0")
	checkKeys(t, b, "a/", "", 0, "a/x", "a/y-", "a/y/z")
	checkKeys(t, b, "a/y", "", 0, "a/y-", "a/y/z")
}

// TestListReadsOnlyNeededDirs checks that List reads only the directories
// that can hold matching keys and stops once it has enough.
func TestListReadsOnlyNeededDirs(t *testing.T) {
	b := openTemp(t)
	putKeys(t, b, "a/1", "a/2", "a/3")
	for i := range 10 {
		putKeys(t, b, fmt.Sprintf("b/d%02d/k", i))
	}
	var read []string
	readDir = func(dir string) ([]os.DirEntry, error) {
		rel, _ := filepath.Rel(b.Dir(), dir)
		read = append(read, filepath.ToSlash(rel))
		return os.ReadDir(dir)
	}
	t.Cleanup(func() { readDir = os.ReadDir })

	cases := []struct {
		prefix, startAfter string
		limit              int
		want               []string
	}{
		{"a/", "", 0, []string{"a"}},
		{"", "", 2, []string{".", "a"}},
		{"b/d05", "", 0, []string{"b", "b/d05"}},
		{"b/d05/", "", 0, []string{"b/d05"}},
		{"", "b/d07/", 0, []string{".", "b", "b/d07", "b/d08", "b/d09"}},
		{"b/", "b/d03/k", 1, []string{"b", "b/d03", "b/d04"}},
		{"c/d/", "", 0, []string{"c/d"}},
	}
	for _, c := range cases {
		read = nil
		list(t, b, c.prefix, c.startAfter, c.limit)
		if !slices.Equal(read, c.want) {
			t.Errorf("List(%q, %q, %d) read directories %q, want %q", c.prefix, c.startAfter, c.limit, read, c.want)
		}
	}
}

// TestListStaysInsideRoot checks that a prefix cannot lead List out of the
// bucket's directory.
func TestListStaysInsideRoot(t *testing.T) {
	parent := t.TempDir()
	b, err := Open(filepath.Join(parent, "bucket"))
	if err != nil {
		t.Fatalf("Open() = %v, want nil", err)
	}
	if err := os.WriteFile(filepath.Join(parent, "secret"), []byte("outside"), 0o600); err != nil {
		t.Fatal(err)
	}
	putKeys(t, b, "inside")
	for _, prefix := range []string{"..", "../", "../s", "./", "/", "//", "inside/../", ".sg-tmp/"} {
		checkKeys(t, b, prefix, "", 0)
	}
}

// TestListSkipsStrayFiles checks that temporary files left by a crash,
// symbolic links and empty directories are not listed.
func TestListSkipsStrayFiles(t *testing.T) {
	b := openTemp(t)
	putKeys(t, b, "d/object", "top")
	root := b.Dir()
	mustWrite := func(rel string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, rel), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(".sg-tmp-123")
	mustWrite("d/.sg-tmp-456")
	if err := os.MkdirAll(filepath.Join(root, "empty", "dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "top"), filepath.Join(root, "link")); err != nil {
		t.Logf("no symbolic link: %v", err)
	}
	checkKeys(t, b, "", "", 0, "d/object", "top")
	// The crash leftovers are removed so that openTemp's check passes.
	os.Remove(filepath.Join(root, ".sg-tmp-123"))
	os.Remove(filepath.Join(root, "d/.sg-tmp-456"))
}
