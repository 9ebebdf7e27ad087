package miniostore

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sealgate/sealgate/store"
)

func TestListPrefix(t *testing.T) {
	cases := []struct {
		prefix, want string
		ok           bool
	}{
		{"", "", true},
		{"a", "a", true},
		{"a/", "a/", true},
		{"a/b", "a/b", true},
		{"a/.", "a/", true},
		{"a/..", "a/", true},
		{"..", "", true},
		{"a/..x", "a/..x", true},
		{"o/\xc3", "o/", true}, // "ü" cut short
		{"../", "", false},
		{"a/../", "", false},
		{"/a", "", false},
		{"a//", "", false},
		{"a\x00", "", false},
		{"a\\b", "", false},
		{".sg-tmp", "", false},
		{"a/.sg-tmp-1/", "", false},
		{"\xff/", "", false},
		{strings.Repeat("k", store.MaxKeyLen+1), "", false},
	}
	for _, c := range cases {
		got, ok := listPrefix(c.prefix)
		if got != c.want || ok != c.ok {
			t.Errorf("listPrefix(%q) = %q, %t, want %q, %t", c.prefix, got, ok, c.want, c.ok)
		}
	}
}

// minioSafe returns why MinIO would refuse or mishandle q, or "".
func minioSafe(q listQuery) string {
	switch {
	case strings.Contains(q.prefix, "//"), strings.HasPrefix(q.prefix, "/"),
		!utf8.ValidString(q.prefix), strings.ContainsRune(q.prefix, 0):
		return "prefix refused"
	case q.startAfter != "" && !strings.HasPrefix(q.startAfter, q.prefix):
		return "start without the prefix"
	case !utf8.ValidString(q.startAfter), strings.ContainsRune(q.startAfter, 0):
		return "start refused"
	}
	for seg := range strings.SplitSeq(q.prefix, "/") {
		if s := strings.TrimSpace(seg); s == "." || s == ".." {
			return "prefix refused"
		}
	}
	base := q.prefix[:strings.LastIndexByte(q.prefix, '/')+1]
	if q.startAfter != "" && strings.Contains(q.startAfter[len(base):], "/") {
		return "start has a slash below the prefix's directory"
	}
	return ""
}

// TestListPlan checks, over random keys, prefixes and starts, that the
// requests of listPlan are ones MinIO handles well and that an S3 server
// answering them, filtered as List filters, gives exactly the wanted keys.
func TestListPlan(t *testing.T) {
	alphabet := []string{"a", "b", "/", ".", "!", "-", "0", "\x00", "é", "\xc3", "~"}
	r := rand.New(rand.NewPCG(1, 2))
	word := func(maxLen int) string {
		var sb strings.Builder
		for range r.IntN(maxLen + 1) {
			sb.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return sb.String()
	}
	set := map[string]bool{}
	for len(set) < 400 {
		if k := word(8); store.ValidateKey(k) == nil {
			set[k] = true
		}
	}
	keys := slices.Sorted(maps.Keys(set))
	for range 10000 {
		prefix, startAfter := word(4), word(8)
		if r.IntN(3) == 0 {
			startAfter = keys[r.IntN(len(keys))] + word(2)
		}
		var want []string
		for _, k := range keys {
			if strings.HasPrefix(k, prefix) && k > startAfter {
				want = append(want, k)
			}
		}
		keep := func(k string) bool { return strings.HasPrefix(k, prefix) && k > startAfter }
		var got []string
		plan := listPlan(prefix, startAfter)
		for _, q := range plan {
			if why := minioSafe(q); why != "" {
				t.Fatalf("listPlan(%q, %q) has %+v: %s", prefix, startAfter, q, why)
			}
			if q.exact != "" && set[q.exact] && keep(q.exact) {
				got = append(got, q.exact)
			}
			for _, k := range keys {
				if strings.HasPrefix(k, q.prefix) && k > q.startAfter && keep(k) {
					got = append(got, k)
				}
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("listPlan(%q, %q) = %+v gives %q, want %q", prefix, startAfter, plan, got, want)
		}
	}
}
