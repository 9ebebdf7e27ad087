package keys

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// identity is a KEK for these tests that wraps by copying: the envelope's
// framing, not a KMS, is what they check.
type identity struct{ uri string }

func (i identity) KeyURI() string { return i.uri }
func (i identity) Wrap(_ context.Context, pt []byte, _ EncryptionContext) ([]byte, error) {
	return append([]byte(nil), pt...), nil
}
func (i identity) Unwrap(_ context.Context, w []byte, _ EncryptionContext) ([]byte, error) {
	return append([]byte(nil), w...), nil
}

func TestBodyAndPlaintextSizesAtSegmentBoundaries(t *testing.T) {
	seg := MinSegmentSize
	first, rest := seg-tinkHeaderLen-tagLen, seg-tagLen
	h := &Header{SegmentSize: seg}
	for _, n := range []int{0, 1, first - 1, first, first + 1, first + rest - 1, first + rest, first + rest + 1, first + 2*rest} {
		var buf bytes.Buffer
		w, hdr, err := Seal(context.Background(), &buf, SealParams{
			Context: EncryptionContext{ContextAccount: "a"}, Mode: ModeProvider,
			KEKs: []Wrapper{identity{"test://k"}}, SegmentSize: seg,
		})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(bytes.Repeat([]byte{1}, n))
		w.Close()
		body := int64(buf.Len() - hdr.Len())
		if got := BodySize(int64(n), seg); got != body {
			t.Errorf("BodySize(%d) = %d, want the %d bytes sealed", n, got, body)
		}
		if got, err := h.PlaintextSize(body); err != nil || got != int64(n) {
			t.Errorf("PlaintextSize(%d) = %d, %v; want %d", body, got, err, n)
		}
		if got := hdr.ObjectSize(int64(n)); got != int64(buf.Len()) {
			t.Errorf("ObjectSize(%d) = %d, want %d", n, got, buf.Len())
		}
	}
	// Lengths no sealed body can have: shorter than a header and a tag, and
	// a last segment holding only its tag.
	for _, bad := range []int64{0, int64(tinkHeaderLen + tagLen - 1), int64(seg) + int64(tagLen)} {
		if _, err := h.PlaintextSize(bad); !errors.Is(err, ErrIntegrity) {
			t.Errorf("PlaintextSize(%d): got %v, want ErrIntegrity", bad, err)
		}
	}
}

func TestContextMapLimits(t *testing.T) {
	ok := map[string]string{strings.Repeat("k", maxKeyLen): strings.Repeat("v", maxValueLen), "x": ""}
	if err := validateMap(ok); err != nil {
		t.Fatalf("entries at the limits: %v", err)
	}
	big := map[string]string{}
	for i := 0; i < maxMapEntries; i++ {
		big[fmt.Sprint("k", i)] = "v"
	}
	if err := validateMap(big); err != nil {
		t.Fatalf("%d entries: %v", maxMapEntries, err)
	}
	got, err := decodeMap(encodeMap(big))
	if err != nil || len(got) != maxMapEntries {
		t.Fatalf("round trip of %d entries: %d, %v", maxMapEntries, len(got), err)
	}
	big["one-more"] = "v"
	for name, m := range map[string]map[string]string{
		"too many entries": big,
		"empty name":       {"": "v"},
		"long name":        {strings.Repeat("k", maxKeyLen+1): "v"},
		"long value":       {"k": strings.Repeat("v", maxValueLen+1)},
		"bad UTF-8":        {"k\xff": "v"},
	} {
		if err := validateMap(m); err == nil {
			t.Errorf("%s: validated", name)
		}
	}
	if got, err := decodeMap(encodeMap(ok)); err != nil || got[strings.Repeat("k", maxKeyLen)] != strings.Repeat("v", maxValueLen) {
		t.Fatalf("round trip at the limits: %v", err)
	}
	// Encodings a writer never makes: entries out of order or repeated,
	// lengths past the limits or the end.
	entry := func(k, v string) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(len(k)))
		b = append(b, k...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		return append(b, v...)
	}
	two := func(a, b []byte) []byte { return append(append([]byte{0, 2}, a...), b...) }
	for name, b := range map[string][]byte{
		"unsorted":   two(entry("b", "1"), entry("a", "2")),
		"repeated":   two(entry("a", "1"), entry("a", "2")),
		"short":      {0},
		"count only": {0, 1},
		"long name":  append([]byte{0, 1}, entry(strings.Repeat("k", maxKeyLen+1), "v")...),
		"long value": append([]byte{0, 1}, entry("k", strings.Repeat("v", maxValueLen+1))...),
		"too many":   binary.BigEndian.AppendUint16(nil, maxMapEntries+1),
		"trailing":   append(append([]byte{0, 1}, entry("a", "1")...), 0),
		"value past": append(append([]byte{0, 1, 0, 1, 'a'}, 0, 0, 0, 9), 'x'),
	} {
		if _, err := decodeMap(b); err == nil {
			t.Errorf("decodeMap(%s): accepted", name)
		}
	}
}

func TestSlotLimits(t *testing.T) {
	slot := func(uri string, wrapped int) Slot {
		return Slot{Kind: SlotKindShare, KeyURI: uri, Wrapped: bytes.Repeat([]byte{1}, wrapped)}
	}
	max := slot("k://"+strings.Repeat("u", maxKeyURILen-4), maxWrappedLen)
	b, err := encodeSlots(ModeProvider, []Slot{max})
	if err != nil {
		t.Fatalf("a slot at the limits: %v", err)
	}
	if _, got, err := parseSlots(b); err != nil || len(got) != 1 || got[0].KeyURI != max.KeyURI {
		t.Fatalf("parse of a slot at the limits: %v", err)
	}
	eight := make([]Slot, maxSlots)
	for i := range eight {
		eight[i] = slot(fmt.Sprint("k://", i), 32)
	}
	if b, err := encodeSlots(ModeCustomerAndProvider, eight); err != nil {
		t.Fatalf("%d slots: %v", maxSlots, err)
	} else if _, got, err := parseSlots(b); err != nil || len(got) != maxSlots {
		t.Fatalf("parse of %d slots: %d, %v", maxSlots, len(got), err)
	}
	for name, slots := range map[string][]Slot{
		"no slot":      nil,
		"nine slots":   append(eight, slot("k://9", 32)),
		"long URI":     {slot("k://"+strings.Repeat("u", maxKeyURILen-3), 32)},
		"empty URI":    {slot("", 32)},
		"long wrapped": {slot("k://a", maxWrappedLen+1)},
		"no wrapped":   {slot("k://a", 0)},
		"bad ik":       {{Kind: SlotKindIntermediate, KeyURI: "k://a", IKID: []byte{1}, WrappedIK: []byte{1}, Wrapped: []byte{1}}},
		"long ik":      {{Kind: SlotKindIntermediate, KeyURI: "k://a", IKID: make([]byte, IntermediateKeyIDLen), WrappedIK: make([]byte, maxWrappedLen+1), Wrapped: []byte{1}}},
		"unknown kind": {{Kind: 9, KeyURI: "k://a", Wrapped: []byte{1}}},
	} {
		if _, err := encodeSlots(ModeProvider, slots); err == nil {
			t.Errorf("encodeSlots(%s): accepted", name)
		}
	}
	if _, err := encodeSlots(Mode(9), []Slot{slot("k://a", 1)}); err == nil {
		t.Error("encodeSlots with mode 9: accepted")
	}
	// Parsing: every length field set past what follows, or past its limit.
	good, _ := encodeSlots(ModeProvider, []Slot{{Kind: SlotKindIntermediate, KeyURI: "k://a", IKID: make([]byte, IntermediateKeyIDLen),
		WrappedIK: []byte{1, 2}, Wrapped: []byte{3, 4}}})
	if _, _, err := parseSlots(good); err != nil {
		t.Fatal(err)
	}
	// Layout: mode, count, kind, URI length (2), URI (5), intermediate key
	// id (16), its wrapped length (4) and bytes (2), wrapped length (4) and
	// bytes (2).
	set := func(off int, v ...byte) []byte {
		b := bytes.Clone(good)
		copy(b[off:], v)
		return b
	}
	for name, bad := range map[string][]byte{
		"mode 0":            set(0, 0),
		"mode 4":            set(0, 4),
		"no slots":          set(1, 0),
		"nine slots":        set(1, 9),
		"URI length 0":      set(3, 0, 0),
		"URI past the end":  set(3, 0xff, 0xff),
		"URI over limit":    append(set(3, 0x08, 0x01), make([]byte, 4096)...),
		"wrapped ik 0":      set(26, 0, 0, 0, 0),
		"wrapped ik past":   set(26, 0, 0, 1, 0),
		"wrapped ik over":   append(set(26, 0, 0, 0x20, 1), make([]byte, 9000)...),
		"wrapped 0":         set(32, 0, 0, 0, 0),
		"wrapped past":      set(32, 0, 0, 0, 9),
		"wrapped over":      append(set(32, 0, 0, 0x20, 1), make([]byte, 9000)...),
		"trailing byte":     append(bytes.Clone(good), 0),
		"unknown slot kind": set(2, 7),
	} {
		if _, got, err := parseSlots(bad); err == nil {
			t.Errorf("parseSlots(%s): parsed %v", name, got)
		}
	}
	for n := 0; n < len(good); n++ {
		if _, _, err := parseSlots(good[:n]); err == nil {
			t.Errorf("slots cut to %d bytes: parsed", n)
		}
	}
}

func TestBoundLimits(t *testing.T) {
	// The smallest bound (empty context and metadata) reads back; one of the
	// largest allowed does too, one byte more is refused.
	for _, meta := range []map[string]string{nil, fillBound(maxBoundLen)} {
		var buf bytes.Buffer
		w, h, err := Seal(context.Background(), &buf, SealParams{Metadata: meta, Mode: ModeProvider, KEKs: []Wrapper{identity{"test://k"}}})
		if err != nil {
			t.Fatalf("bound of %d entries: %v", len(meta), err)
		}
		w.Close()
		got, err := ReadHeader(bytes.NewReader(buf.Bytes()))
		if err != nil || got.Len() != h.Len() {
			t.Fatalf("reading a bound of %d entries: %v", len(meta), err)
		}
	}
	if _, err := encodeBound(nil, fillBound(maxBoundLen+1), DefaultSegmentSize); err == nil {
		t.Fatal("a bound one byte over the limit: encoded")
	}
}

// fillBound returns metadata that makes a bound of exactly n bytes.
func fillBound(n int) map[string]string {
	m := map[string]string{}
	size := func() int { b, _ := encodeBoundUnchecked(m); return b }
	for i := 0; size() < n; i++ {
		need := n - size()
		k := fmt.Sprintf("m%03d", i)
		v := min(maxValueLen, need-2-len(k)-4)
		if v < 0 {
			// Too little room for another entry: grow the previous one.
			prev := fmt.Sprintf("m%03d", i-1)
			m[prev] += strings.Repeat("x", need)
			break
		}
		m[k] = strings.Repeat("x", v)
	}
	return m
}

// encodeBoundUnchecked returns the bound length n of metadata m.
func encodeBoundUnchecked(m map[string]string) (int, error) {
	return 4 + len(encodeMap(nil)) + 4 + len(encodeMap(m)) + boundFixedTail, nil
}

// TestSealAndRewrapAtTheirLimits: the most key encryption keys and the
// largest segment size are accepted, one more is refused, by Seal and by
// Rewrap alike.
func TestSealAndRewrapAtTheirLimits(t *testing.T) {
	keks := func(n int) []Wrapper {
		var out []Wrapper
		for i := range n {
			out = append(out, identity{fmt.Sprint("test://k", i)})
		}
		return out
	}
	var buf bytes.Buffer
	seal := func(n, seg int) (*Header, error) {
		buf.Reset()
		w, h, err := Seal(context.Background(), &buf, SealParams{
			Context: EncryptionContext{ContextAccount: "a"}, Mode: ModeCustomerAndProvider, KEKs: keks(n), SegmentSize: seg,
		})
		if err != nil {
			return nil, err
		}
		w.Write([]byte("x"))
		return h, w.Close()
	}
	h, err := seal(maxSlots, MaxSegmentSize)
	if err != nil {
		t.Fatalf("%d keys, %d-byte segments: %v", maxSlots, MaxSegmentSize, err)
	}
	if got, err := ReadHeader(bytes.NewReader(buf.Bytes())); err != nil || got.SegmentSize != MaxSegmentSize || len(got.Slots) != maxSlots {
		t.Fatalf("reading back the header at the limits: %v", err)
	}
	if _, err := seal(maxSlots+1, 0); err == nil {
		t.Errorf("%d keys: sealed", maxSlots+1)
	}
	if _, err := seal(1, MaxSegmentSize+1); err == nil {
		t.Errorf("%d-byte segments: sealed", MaxSegmentSize+1)
	}
	if _, err := seal(1, MinSegmentSize); err != nil {
		t.Errorf("%d-byte segments: %v", MinSegmentSize, err)
	}
	if _, err := seal(1, MinSegmentSize-1); err == nil {
		t.Errorf("%d-byte segments: sealed", MinSegmentSize-1)
	}
	kr := NewKeyring()
	for _, k := range keks(maxSlots + 1) {
		kr.Add(k)
	}
	wrappers := func(n int) []ShareWrapper {
		var out []ShareWrapper
		for _, k := range keks(n) {
			out = append(out, Direct(k))
		}
		return out
	}
	if _, err := h.Rewrap(context.Background(), kr, ModeCustomerAndProvider, wrappers(maxSlots)); err != nil {
		t.Errorf("rewrap to %d keys: %v", maxSlots, err)
	}
	if _, err := h.Rewrap(context.Background(), kr, ModeCustomerAndProvider, wrappers(maxSlots+1)); err == nil {
		t.Errorf("rewrap to %d keys: accepted", maxSlots+1)
	}
}

// TestSlotLengthsAtTheirLimits parses slots whose wrapped keys are as long
// as allowed, and refuses empty ones even when nothing follows them.
func TestSlotLengthsAtTheirLimits(t *testing.T) {
	ik := Slot{Kind: SlotKindIntermediate, KeyURI: "k://a", IKID: make([]byte, IntermediateKeyIDLen),
		WrappedIK: bytes.Repeat([]byte{1}, maxWrappedLen), Wrapped: bytes.Repeat([]byte{2}, maxWrappedLen)}
	b, err := encodeSlots(ModeProvider, []Slot{ik})
	if err != nil {
		t.Fatal(err)
	}
	if _, got, err := parseSlots(b); err != nil || len(got) != 1 || len(got[0].WrappedIK) != maxWrappedLen {
		t.Fatalf("an intermediate slot at the limits: %v", err)
	}
	// mode, count, kind, URI length and URI (5 bytes), then per kind.
	head := append([]byte{byte(ModeProvider), 1}, 0, 0, 5)
	head = append(head, "k://a"...)
	u32 := func(n int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(n)) }
	shareEmpty := append(bytes.Clone(head), u32(0)...)
	shareEmpty[2] = byte(SlotKindShare)
	ikEmpty := append(append(bytes.Clone(head), make([]byte, IntermediateKeyIDLen)...), u32(0)...)
	ikEmpty = append(append(ikEmpty, u32(1)...), 9)
	ikEmpty[2] = byte(SlotKindIntermediate)
	for name, bad := range map[string][]byte{"empty wrapped share, last": shareEmpty, "empty wrapped intermediate key": ikEmpty} {
		if _, got, err := parseSlots(bad); err == nil {
			t.Errorf("parseSlots(%s): parsed %+v", name, got)
		}
	}
	// The same layouts with one byte each parse, so the refusals above are
	// about the empty lengths.
	share1 := append(append(bytes.Clone(head), u32(1)...), 7)
	share1[2] = byte(SlotKindShare)
	if _, _, err := parseSlots(share1); err != nil {
		t.Errorf("a one-byte share slot: %v", err)
	}
}
