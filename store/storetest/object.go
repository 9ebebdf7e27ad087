package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/store"
)

func testRoundTrip(t *testing.T, b store.Bucket) {
	for _, n := range []int{0, 1, 1<<20 + 7} {
		for _, known := range []bool{true, false} {
			name := fmt.Sprintf("size=%d/known=%t", n, known)
			t.Run(name, func(t *testing.T) {
				key := "roundtrip/" + strings.ReplaceAll(name, "/", "-")
				data := payload(n, uint64(n))
				size := int64(-1)
				r := hideLen{bytes.NewReader(data)}
				if known {
					size = int64(n)
				}
				if err := b.Put(t.Context(), key, r, size); err != nil {
					t.Fatalf("Put(%q, size %d) = %v, want nil", key, size, err)
				}
				checkContent(t, b, key, data)
				info, err := b.Stat(t.Context(), key)
				if err != nil {
					t.Fatalf("Stat(%q) = %v, want nil", key, err)
				}
				if info.Size != int64(n) {
					t.Errorf("Stat(%q).Size = %d, want %d", key, info.Size, n)
				}
			})
		}
	}
}

func testRanges(t *testing.T, b store.Bucket) {
	const key = "ranges/object"
	data := payload(1<<20+7, 7)
	n := int64(len(data))
	mustPut(t, b, key, data)
	cases := []struct {
		offset, length int64
		from, to       int64 // the expected bytes are data[from:to]
	}{
		{0, -1, 0, n},
		{0, 0, 0, 0},
		{0, 1, 0, 1},
		{0, 100, 0, 100},
		{10, 20, 10, 30},
		{262140, 300000, 262140, 562140},
		{n - 1, -1, n - 1, n},
		{n - 1, 1, n - 1, n},
		{n - 10, 100, n - 10, n},
		{0, n + 1000, 0, n},
		{n, -1, n, n},
		{n, 5, n, n},
		{n + 100, -1, n, n},
		{n + 100, 10, n, n},
	}
	for _, c := range cases {
		got, err := readRange(t.Context(), b, key, c.offset, c.length)
		if err != nil {
			t.Errorf("Get(%q, %d, %d) = %v, want nil", key, c.offset, c.length, err)
			continue
		}
		if want := data[c.from:c.to]; !bytes.Equal(got, want) {
			t.Errorf("Get(%q, %d, %d) = %s, want %s", key, c.offset, c.length, describe(got), describe(want))
		}
	}
	for _, c := range []struct{ offset, length int64 }{{-1, -1}, {-1, 10}, {0, -2}} {
		if _, err := readRange(t.Context(), b, key, c.offset, c.length); err == nil {
			t.Errorf("Get(%q, %d, %d) = nil error, want an error", key, c.offset, c.length)
		}
	}

	const empty = "ranges/empty"
	mustPut(t, b, empty, nil)
	for _, c := range []struct{ offset, length int64 }{{0, -1}, {0, 10}, {5, -1}} {
		got, err := readRange(t.Context(), b, empty, c.offset, c.length)
		if err != nil || len(got) != 0 {
			t.Errorf("Get(%q, %d, %d) = %s, %v, want 0 bytes, nil", empty, c.offset, c.length, describe(got), err)
		}
	}
}

func testStat(t *testing.T, b store.Bucket) {
	const key = "stat/object"
	data := payload(12345, 1)
	mustPut(t, b, key, data)
	info, err := b.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat(%q) = %v, want nil", key, err)
	}
	if info.Key != key {
		t.Errorf("Stat(%q).Key = %q, want %q", key, info.Key, key)
	}
	if info.Size != int64(len(data)) {
		t.Errorf("Stat(%q).Size = %d, want %d", key, info.Size, len(data))
	}
	// Only a loose check: the backend's clock may differ from ours.
	if d := time.Since(info.ModTime); info.ModTime.IsZero() || d > time.Hour || d < -time.Hour {
		t.Errorf("Stat(%q).ModTime = %v, want a time within an hour of %v", key, info.ModTime, time.Now())
	}
}

func testOverwrite(t *testing.T, b store.Bucket) {
	const key = "overwrite/object"
	first, second := payload(300<<10, 1), payload(1000, 2)
	mustPut(t, b, key, first)
	mustPut(t, b, key, second)
	checkContent(t, b, key, second)
	info, err := b.Stat(t.Context(), key)
	if err != nil || info.Size != int64(len(second)) {
		t.Errorf("Stat(%q) = size %d, %v, want size %d, nil", key, info.Size, err, len(second))
	}
	third := payload(500<<10, 3)
	mustPut(t, b, key, third)
	checkContent(t, b, key, third)
	checkList(t, b, "overwrite/", "", 0, []string{key})
}

func testNotFound(t *testing.T, b store.Bucket) {
	checkNotFound(t, b, "missing")
	mustPut(t, b, "nf/dir/a", []byte("a"))
	checkNotFound(t, b, "nf/dir/b")       // sibling of an object
	checkNotFound(t, b, "nf/dir")         // prefix of an object
	checkNotFound(t, b, "nf/dir/a/below") // below an object
	checkNotFound(t, b, "nf/other/a")
}

func testDelete(t *testing.T, b store.Bucket) {
	const key, sibling = "delete/dir/object", "delete/dir/sibling"
	mustPut(t, b, key, []byte("doomed"))
	mustPut(t, b, sibling, []byte("stays"))
	for i := range 2 {
		if err := b.Delete(t.Context(), key); err != nil {
			t.Fatalf("Delete(%q) #%d = %v, want nil", key, i+1, err)
		}
		checkNotFound(t, b, key)
	}
	for _, missing := range []string{"delete/never-stored", "delete/dir", "delete/dir/sibling/below"} {
		if err := b.Delete(t.Context(), missing); err != nil {
			t.Errorf("Delete(%q) = %v, want nil", missing, err)
		}
	}
	checkContent(t, b, sibling, []byte("stays"))
	checkList(t, b, "delete/", "", 0, []string{sibling})

	// A deleted key can be stored again.
	mustPut(t, b, key, []byte("back"))
	checkContent(t, b, key, []byte("back"))
}

func testMultiSegmentKeys(t *testing.T, b store.Bucket) {
	keys := []string{
		"ms/accounts/demo/artifacts/0190f1a2-7c3e-7d4e/body",
		"ms/accounts/demo/settings",
		"ms/a/b/c/d/e/f/g/h/i/j",
		"ms/.hidden/..dots../x.y",
		"ms/with space/tab\there",
		"ms/ünïcödé/日本語/κλειδί",
		"ms/" + strings.Repeat("s", 200) + "/" + strings.Repeat("t", 200),
	}
	for i, key := range keys {
		mustPut(t, b, key, payload(100+i, uint64(i)))
	}
	for i, key := range keys {
		checkContent(t, b, key, payload(100+i, uint64(i)))
	}
	want := append([]string(nil), keys...)
	slices.Sort(want)
	checkList(t, b, "ms/", "", 0, want)
}

func testInvalidKeys(t *testing.T, b store.Bucket) {
	keys := []string{
		"", "/", "/a", "a/", "a//b", ".", "..", "./a", "a/./b", "../a", "a/..",
		"a\\b", "a\x00b", "\xff\xfe", ".sg-tmp", "a/.sg-tmp-1", strings.Repeat("k", store.MaxKeyLen+1),
	}
	ctx := t.Context()
	for _, key := range keys {
		if err := b.Put(ctx, key, strings.NewReader("x"), 1); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", key, err)
		}
		if _, err := b.Get(ctx, key, 0, -1); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Get(%q) = %v, want ErrInvalidKey", key, err)
		}
		if _, err := b.Stat(ctx, key); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Stat(%q) = %v, want ErrInvalidKey", key, err)
		}
		if err := b.Delete(ctx, key); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
	mustPut(t, b, "valid/key", []byte("v"))
	for _, prefix := range []string{"../", "valid/../", "/valid/", "valid//", ".sg-tmp/"} {
		checkList(t, b, prefix, "", 0, nil)
	}
}
