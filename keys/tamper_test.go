package keys_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/keystest"
)

// tamperCase seals 3.5 segments and returns the object, its plaintext and the
// offset where the body starts.
func tamperCase(t *testing.T) (fixture, []byte, []byte, int) {
	f := newFixture(t)
	plain := pattern(firstPT + 2*restPT + restPT/2)
	obj := f.seal(t, keystest.Context("acct", "art"), plain)
	h, err := keys.ReadHeader(bytes.NewReader(obj))
	if err != nil {
		t.Fatal(err)
	}
	return f, obj, plain, h.Len()
}

// mustFail opens a damaged object and checks that it fails with an integrity
// or format error and that whatever plaintext came out is a prefix of the
// original made of whole verified segments.
func mustFail(t *testing.T, f fixture, name string, obj, plain []byte) {
	t.Helper()
	got, err := f.open(obj)
	if err == nil {
		t.Errorf("%s: open succeeded, want an integrity error", name)
		return
	}
	if !errors.Is(err, keys.ErrIntegrity) && !errors.Is(err, keys.ErrFormat) && !errors.Is(err, keys.ErrUnknownKey) && !errors.Is(err, keys.ErrWrongKey) {
		t.Errorf("%s: got %v, want ErrIntegrity, ErrFormat, ErrUnknownKey or ErrWrongKey", name, err)
	}
	if !bytes.HasPrefix(plain, got) {
		t.Errorf("%s: released %d bytes that are not the original plaintext", name, len(got))
	}
	if n := len(got); n != 0 && n != firstPT && (n-firstPT)%restPT != 0 {
		t.Errorf("%s: released %d bytes, want whole verified segments only", name, n)
	}
}

func TestTamperEveryHeaderByte(t *testing.T) {
	f, obj, plain, hlen := tamperCase(t)
	for i := 0; i < hlen+40; i++ { // the sealgate header and Tink's body header
		bad := bytes.Clone(obj)
		bad[i] ^= 0x04
		mustFail(t, f, fmt.Sprintf("bit flipped at header byte %d", i), bad, plain)
	}
}

func TestTamperBody(t *testing.T) {
	f, obj, plain, hlen := tamperCase(t)
	body := obj[hlen:]
	for _, off := range []int{40, seg - 1, seg, seg + seg/2, 2*seg - 1, 2 * seg, len(body) - 17, len(body) - 1} {
		bad := bytes.Clone(obj)
		bad[hlen+off] ^= 0x80
		mustFail(t, f, fmt.Sprintf("bit flipped at body byte %d", off), bad, plain)
	}
	// A flip in the third segment must release exactly the first two.
	bad := bytes.Clone(obj)
	bad[hlen+2*seg+100] ^= 1
	got, _ := f.open(bad)
	if want := firstPT + restPT; len(got) != want {
		t.Errorf("flip in segment 3: released %d bytes, want %d (segments 1 and 2)", len(got), want)
	}
}

func TestTruncation(t *testing.T) {
	f, obj, plain, hlen := tamperCase(t)
	for _, n := range []int{0, 5, hlen - 1, hlen, hlen + 40, hlen + seg, hlen + seg - 1, hlen + seg + 1,
		hlen + 2*seg, hlen + 2*seg + 16, hlen + 3*seg, len(obj) - 1} {
		mustFail(t, f, fmt.Sprintf("truncated to %d of %d bytes", n, len(obj)), obj[:n], plain)
	}
	mustFail(t, f, "one byte appended", append(bytes.Clone(obj), 0), plain)
	mustFail(t, f, "one segment appended", append(bytes.Clone(obj), obj[hlen+seg:hlen+2*seg]...), plain)
}

func TestReorderAndDuplicateSegments(t *testing.T) {
	f, obj, plain, hlen := tamperCase(t)
	s1 := obj[hlen+seg : hlen+2*seg]
	s2 := obj[hlen+2*seg : hlen+3*seg]
	tail := obj[hlen+3*seg:]
	head := obj[:hlen+seg]
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	mustFail(t, f, "segments 2 and 3 swapped", cat(head, s2, s1, tail), plain)
	mustFail(t, f, "segment 2 duplicated", cat(head, s1, s1, s2, tail), plain)
	mustFail(t, f, "segment 2 dropped", cat(head, s2, tail), plain)
	mustFail(t, f, "last segment dropped", cat(head, s1, s2), plain)
}

func TestSwappedBetweenArtifacts(t *testing.T) {
	f := newFixture(t)
	a := f.seal(t, keystest.Context("acct", "art-a"), pattern(1000))
	b := f.seal(t, keystest.Context("acct", "art-b"), pattern(1000))
	c := f.seal(t, keystest.Context("other", "art-a"), pattern(1000))
	ha, _ := keys.ReadHeader(bytes.NewReader(a))
	hb, _ := keys.ReadHeader(bytes.NewReader(b))
	// Header of a with the body of b, and b's slots under a's header.
	mustFail(t, f, "header of a, body of b", append(bytes.Clone(a[:ha.Len()]), b[hb.Len():]...), pattern(1000))
	ha.Slots = hb.Slots
	hdr, _ := ha.Encode()
	mustFail(t, f, "key slots of b in a", append(hdr, a[len(a)-int(keys.BodySize(1000, seg)):]...), pattern(1000))
	// A whole object moved keeps its own context: the caller must compare it.
	hc, err := keys.ReadHeader(bytes.NewReader(c))
	if err != nil {
		t.Fatal(err)
	}
	if hc.Context[keys.ContextAccount] != "other" {
		t.Fatalf("moved object context account = %q, want %q", hc.Context[keys.ContextAccount], "other")
	}
}
