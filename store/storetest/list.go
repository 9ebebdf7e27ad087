package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sealgate/sealgate/store"
)

func testListPrefix(t *testing.T, b store.Bucket) {
	keys := []string{"lp/a/1", "lp/a/2", "lp/ab", "lp/b/1", "lp/b/c/d", "other/1"}
	for _, key := range keys {
		mustPut(t, b, key, []byte(key))
	}
	cases := []struct {
		prefix string
		want   []string
	}{
		{"", keys},
		{"l", keys[:5]},
		{"lp/", keys[:5]},
		{"lp/a", []string{"lp/a/1", "lp/a/2", "lp/ab"}},
		{"lp/a/", []string{"lp/a/1", "lp/a/2"}},
		{"lp/a/1", []string{"lp/a/1"}},
		{"lp/b/c", []string{"lp/b/c/d"}},
		{"lp/b/c/d", []string{"lp/b/c/d"}},
		{"lp/a/1/", nil},
		{"lp/ab/", nil},
		{"lp/z", nil},
		{"lp/z/y/", nil},
		{"nomatch", nil},
		{"other/1/2", nil},
	}
	for _, c := range cases {
		checkList(t, b, c.prefix, "", 0, c.want)
	}
	infos, err := b.List(t.Context(), "lp/b/", "", 0)
	if err != nil {
		t.Fatalf("List(%q) = %v, want nil", "lp/b/", err)
	}
	for _, info := range infos {
		if info.Size != int64(len(info.Key)) {
			t.Errorf("List(%q) gave %q size %d, want %d", "lp/b/", info.Key, info.Size, len(info.Key))
		}
	}
}

// orderKeys are keys whose byte order differs from the order of a plain
// directory walk: '!', '-' and '.' sort before '/', which sorts before '0'.
// No key is a directory of another ("a" and "a/b"), which a file store
// cannot hold.
var orderKeys = []string{
	"o/a", "o/a!", "o/a-b/c", "o/a.c", "o/a0", "o/A", "o/a~", "o/ü",
	"o/x/a-b", "o/x/a.b/c", "o/x/a/z", "o/x/a/y/z", "o/x-", "o/x0",
}

// putOrderKeys stores orderKeys and returns them in byte order.
func putOrderKeys(t *testing.T, b store.Bucket) []string {
	t.Helper()
	keys := slices.Clone(orderKeys)
	// Store in reverse byte order so that creation order does not help.
	slices.Sort(keys)
	for _, key := range slices.Backward(keys) {
		mustPut(t, b, key, []byte(key))
	}
	return keys
}

func testListOrder(t *testing.T, b store.Bucket) {
	keys := putOrderKeys(t, b)
	checkList(t, b, "", "", 0, keys)
	checkList(t, b, "o/", "", 0, keys)
	checkList(t, b, "o/x", "", 0, filterKeys(keys, "o/x", ""))

	// Pages of one object each must visit every key in order.
	var got []string
	after := ""
	for range len(keys) + 1 {
		page := listKeys(t, b, "o/", after, 1)
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1]
	}
	if !slices.Equal(got, keys) {
		t.Errorf("paging List(%q) by 1 = %q, want %q", "o/", got, keys)
	}
}

// filterKeys returns the sorted keys that start with prefix and sort after
// startAfter.
func filterKeys(sorted []string, prefix, startAfter string) []string {
	var out []string
	for _, k := range sorted {
		if strings.HasPrefix(k, prefix) && k > startAfter {
			out = append(out, k)
		}
	}
	return out
}

func testListStartAfter(t *testing.T, b store.Bucket) {
	keys := putOrderKeys(t, b)
	afters := []string{"", "a", "o", "o/", "o/a/", "o/a-", "o/x", "o/x/", "o/x/a", "o/x/a/", "o/x/a/y", "o/~", "p", "\U0010FFFF"}
	for _, k := range keys {
		afters = append(afters, k, k+"\x00", k+"/", k[:len(k)-1])
	}
	for _, after := range afters {
		for _, prefix := range []string{"", "o/", "o/x/", "o/x/a"} {
			checkList(t, b, prefix, after, 0, filterKeys(keys, prefix, after))
		}
	}
}

func testListPaging(t *testing.T, b store.Bucket) {
	var keys []string
	sizes := map[string]int64{}
	for i := range 25 {
		var key string
		switch i % 4 {
		case 0:
			key = fmt.Sprintf("page/%02d", i)
		case 1:
			key = fmt.Sprintf("page/x/%02d", i)
		case 2:
			key = fmt.Sprintf("page/x-%02d", i)
		default:
			key = fmt.Sprintf("page/x/y/%02d", i)
		}
		keys = append(keys, key)
		sizes[key] = int64(i)
		mustPut(t, b, key, payload(i, uint64(i)))
	}
	mustPut(t, b, "pagf", []byte("outside the prefix"))
	slices.Sort(keys)

	var got []string
	after := ""
	for call := 1; ; call++ {
		infos, err := b.List(t.Context(), "page/", after, 7)
		if err != nil {
			t.Fatalf("List(%q, %q, 7) = %v, want nil", "page/", after, err)
		}
		if len(infos) > 7 {
			t.Fatalf("List(%q, %q, 7) returned %d objects, want at most 7", "page/", after, len(infos))
		}
		if len(infos) == 0 {
			break
		}
		if call > 5 {
			t.Fatalf("paging took more than 5 calls, want 4 pages and an empty one")
		}
		if len(infos) < 7 && len(got)+len(infos) < len(keys) {
			t.Errorf("List(%q, %q, 7) returned %d objects before the end, want 7", "page/", after, len(infos))
		}
		for _, info := range infos {
			got = append(got, info.Key)
			if info.Size != sizes[info.Key] {
				t.Errorf("List gave %q size %d, want %d", info.Key, info.Size, sizes[info.Key])
			}
		}
		after = infos[len(infos)-1].Key
	}
	if !slices.Equal(got, keys) {
		t.Errorf("paging List(%q) by 7 = %q, want %q", "page/", got, keys)
	}
	for _, limit := range []int{0, -1, 25, 26, 1000} {
		checkList(t, b, "page/", "", limit, keys)
	}
	checkList(t, b, "page/", "", 24, keys[:24])
}

func testListAfterDelete(t *testing.T, b store.Bucket) {
	checkList(t, b, "", "", 0, nil)
	keys := []string{"ld/a/1", "ld/a/2", "ld/b", "ld/c/d/e"}
	for _, key := range keys {
		mustPut(t, b, key, []byte(key))
	}
	for _, key := range []string{"ld/a/1", "ld/c/d/e"} {
		if err := b.Delete(t.Context(), key); err != nil {
			t.Fatalf("Delete(%q) = %v, want nil", key, err)
		}
	}
	checkList(t, b, "", "", 0, []string{"ld/a/2", "ld/b"})
	checkList(t, b, "ld/c", "", 0, nil)
	for _, key := range []string{"ld/a/2", "ld/b"} {
		if err := b.Delete(t.Context(), key); err != nil {
			t.Fatalf("Delete(%q) = %v, want nil", key, err)
		}
	}
	checkList(t, b, "", "", 0, nil)
}
