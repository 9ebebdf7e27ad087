package keys_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"testing"

	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/keystest"
	"github.com/sealgate/sealgate/keys/local"
)

const seg = keys.MinSegmentSize

// Plaintext capacity of the first and of every later segment at seg.
const (
	firstPT = seg - 40 - 16
	restPT  = seg - 16
)

type fixture struct {
	kr  *keys.Keyring
	kek keys.Wrapper
}

func newFixture(t testing.TB) fixture {
	dir := t.TempDir()
	w, err := local.Open(dir, "provider")
	if err != nil {
		t.Fatal(err)
	}
	kr := keys.NewKeyring()
	kr.Register(local.Scheme, local.Opener{Dir: dir})
	return fixture{kr: kr, kek: w}
}

func (f fixture) seal(t testing.TB, ec keys.EncryptionContext, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, h, err := keys.Seal(context.Background(), &buf, keys.SealParams{
		Context: ec, Metadata: map[string]string{"content_type": "audio/wav"},
		Mode: keys.ModeProvider, KEKs: []keys.Wrapper{f.kek}, SegmentSize: seg,
	})
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, want := int64(buf.Len()), h.ObjectSize(int64(len(plain))); got != want {
		t.Fatalf("object of %d plaintext bytes: got %d bytes, want ObjectSize %d", len(plain), got, want)
	}
	return buf.Bytes()
}

// open returns the plaintext released before any error.
func (f fixture) open(obj []byte) ([]byte, error) {
	r := bytes.NewReader(obj)
	h, err := keys.ReadHeader(r)
	if err != nil {
		return nil, err
	}
	pr, err := h.Open(context.Background(), r, f.kr)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	_, err = io.Copy(&out, pr)
	return out.Bytes(), err
}

func pattern(n int) []byte {
	b := make([]byte, n)
	var ctr [8]byte
	for i := 0; i < n; i += sha256.Size {
		ctr[0], ctr[1], ctr[2] = byte(i), byte(i>>8), byte(i>>16)
		s := sha256.Sum256(ctr[:])
		copy(b[i:], s[:])
	}
	return b
}

func TestRoundTripSizes(t *testing.T) {
	f := newFixture(t)
	ec := keystest.Context("acct", "art")
	for _, n := range []int{0, 1, firstPT - 1, firstPT, firstPT + 1, seg - 1, seg, seg + 1,
		firstPT + restPT, firstPT + restPT + 1, 5<<20 + 3} {
		plain := pattern(n)
		got, err := f.open(f.seal(t, ec, plain))
		if err != nil {
			t.Fatalf("size %d: open: %v", n, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("size %d: got %d bytes back, want the %d bytes sealed", n, len(got), n)
		}
	}
}

func TestSizesInvert(t *testing.T) {
	for _, s := range []int{keys.MinSegmentSize, keys.DefaultSegmentSize, keys.MaxSegmentSize} {
		h := keys.Header{SegmentSize: s}
		for _, n := range []int64{0, 1, int64(s) - 57, int64(s) - 56, int64(s) - 55, int64(s), 3*int64(s) + 11, 1 << 30} {
			body := keys.BodySize(n, s)
			got, err := h.PlaintextSize(body)
			if err != nil || got != n {
				t.Errorf("seg %d: PlaintextSize(BodySize(%d)=%d) = %d, %v; want %d", s, n, body, got, err, n)
			}
		}
		// A second segment shorter than its tag, and a body shorter than one tag.
		for _, body := range []int64{int64(s) + 5, 55, 0} {
			if _, err := h.PlaintextSize(body); !errors.Is(err, keys.ErrIntegrity) {
				t.Errorf("seg %d: impossible body length %d: got %v, want ErrIntegrity", s, body, err)
			}
		}
	}
}

func TestContextEncodingIsUnambiguous(t *testing.T) {
	a := keys.EncryptionContext{"ab": "c"}.Encode()
	b := keys.EncryptionContext{"a": "bc"}.Encode()
	c := keys.EncryptionContext{"a": "b", "c": ""}.Encode()
	if bytes.Equal(a, b) || bytes.Equal(a, c) || bytes.Equal(b, c) {
		t.Fatalf("distinct contexts encode alike: %x %x %x", a, b, c)
	}
	x := keys.EncryptionContext{"z": "1", "a": "2"}.Encode()
	y := keys.EncryptionContext{"a": "2", "z": "1"}.Encode()
	if !bytes.Equal(x, y) {
		t.Fatalf("equal contexts encode differently: %x vs %x", x, y)
	}
}

func TestCustomerAndProviderNeedsBothKeys(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	cust, err := local.Open(dir, "customer")
	if err != nil {
		t.Fatal(err)
	}
	ec := keystest.Context("acct", "art")
	var buf bytes.Buffer
	w, h, err := keys.Seal(context.Background(), &buf, keys.SealParams{
		Context: ec, Mode: keys.ModeCustomerAndProvider, KEKs: []keys.Wrapper{cust, f.kek},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("both keys"))
	w.Close()
	if got := h.KeyURIs(); len(got) != 2 || got[0] != "local://customer" || got[1] != "local://provider" {
		t.Fatalf("KeyURIs = %v, want [local://customer local://provider]", got)
	}
	// The fixture's keyring knows only the provider key: the read must fail.
	if _, err := f.open(buf.Bytes()); !errors.Is(err, keys.ErrUnknownKey) {
		t.Fatalf("open without the customer key: got %v, want ErrUnknownKey", err)
	}
	f.kr.Add(cust)
	got, err := f.open(buf.Bytes())
	if err != nil || string(got) != "both keys" {
		t.Fatalf("open with both keys: got %q, %v; want %q", got, err, "both keys")
	}
}
