package keys

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	tinkstream "github.com/tink-crypto/tink-go/v2/streamingaead/subtle"
)

// Segment sizes of the streaming body. DefaultSegmentSize was chosen by
// BenchmarkSealSegmentSize (see docs/format.md): larger segments stop paying
// off above it while memory per stream keeps growing.
const (
	MinSegmentSize     = 64 << 10
	MaxSegmentSize     = 1 << 20
	DefaultSegmentSize = 256 << 10
)

const (
	tinkHeaderLen = 1 + 32 + tinkstream.AESGCMHKDFNoncePrefixSizeInBytes
	tagLen        = tinkstream.AESGCMHKDFTagSizeInBytes
	infoBodyKey   = "sealgate/v1/body-key"
	infoCommitKey = "sealgate/v1/commit-key"
)

// KeyResolver finds the Wrapper for a key URI; *Keyring implements it.
type KeyResolver interface {
	Wrapper(ctx context.Context, uri string) (Wrapper, error)
}

// SealParams says how to seal one artifact.
type SealParams struct {
	// Context binds the data key and the body; it goes to every KEK.
	Context EncryptionContext
	// Metadata is authenticated but not encrypted: never put content in it.
	Metadata map[string]string
	Mode     Mode
	// KEKs wrap one share each of the data key; all of them are needed to
	// unwrap it (two for ModeCustomerAndProvider, one otherwise).
	KEKs []Wrapper
	// SegmentSize of the body; 0 means DefaultSegmentSize.
	SegmentSize int
}

// Sealer seals one object. NewSealer does the key work (a fresh data key,
// wrapped under every KEK) so that the header and the object's exact size are
// known before any byte is written; Encrypt then streams the object.
type Sealer struct {
	h   *Header
	dek []byte
}

// NewSealer makes a fresh random data key, splits it into one share per KEK
// and wraps each share. It returns the KEK's error (ErrKeyRevoked,
// ErrKeyUnavailable) when a wrap fails. The data key never leaves the Sealer
// unwrapped.
func NewSealer(ctx context.Context, p SealParams) (*Sealer, error) {
	seg := p.SegmentSize
	if seg == 0 {
		seg = DefaultSegmentSize
	}
	if seg < MinSegmentSize || seg > MaxSegmentSize {
		return nil, fmt.Errorf("keys: segment size %d out of range %d..%d", seg, MinSegmentSize, MaxSegmentSize)
	}
	if len(p.KEKs) == 0 || len(p.KEKs) > maxSlots {
		return nil, fmt.Errorf("keys: %d key encryption keys, want 1..%d", len(p.KEKs), maxSlots)
	}
	bound, err := encodeBound(p.Context, p.Metadata, seg, p.Mode)
	if err != nil {
		return nil, err
	}
	dek := make([]byte, dataKeyLen)
	if _, err := rand.Read(dek); err != nil {
		return nil, fmt.Errorf("keys: random data key: %w", err)
	}
	shares, err := split(dek, len(p.KEKs))
	if err != nil {
		clear(dek)
		return nil, err
	}
	h := &Header{
		Context: p.Context.Clone(), Metadata: cloneMap(p.Metadata),
		SegmentSize: seg, Mode: p.Mode, bound: bound,
	}
	for i, kek := range p.KEKs {
		w, err := kek.Wrap(ctx, shares[i], h.Context)
		clear(shares[i])
		if err != nil {
			clear(dek)
			return nil, err
		}
		h.Slots = append(h.Slots, Slot{Kind: SlotKindShare, KeyURI: kek.KeyURI(), Wrapped: w})
	}
	if h.commitment, err = commitment(dek, bound); err != nil {
		clear(dek)
		return nil, err
	}
	return &Sealer{h: h, dek: dek}, nil
}

// Header returns the header the object will start with.
func (s *Sealer) Header() *Header { return s.h }

// Encrypt writes the header to dst and returns a writer that encrypts the
// body into dst; the object is complete once the writer is closed. Encrypt
// can be called once: it forgets the data key.
func (s *Sealer) Encrypt(dst io.Writer) (io.WriteCloser, error) {
	if s.dek == nil {
		return nil, errors.New("keys: Encrypt called twice")
	}
	defer func() { clear(s.dek); s.dek = nil }()
	body, err := s.h.bodyCipher(s.dek)
	if err != nil {
		return nil, err
	}
	hb, err := s.h.Encode()
	if err != nil {
		return nil, err
	}
	if _, err := dst.Write(hb); err != nil {
		return nil, err
	}
	w, err := body.NewEncryptingWriter(dst, s.h.bound)
	if err != nil {
		return nil, fmt.Errorf("keys: body writer: %w", err)
	}
	return w, nil
}

// Seal is NewSealer followed by Encrypt: it writes the header of a new object
// to dst and returns a writer that encrypts the body into dst.
func Seal(ctx context.Context, dst io.Writer, p SealParams) (io.WriteCloser, *Header, error) {
	s, err := NewSealer(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	w, err := s.Encrypt(dst)
	if err != nil {
		return nil, nil, err
	}
	return w, s.Header(), nil
}

// Open unwraps the data key through the KEKs named in the header, checks the
// key commitment, and returns a reader of the verified plaintext of body (the
// bytes that follow the header). The reader returns an error wrapping
// ErrIntegrity, and no plaintext of the failing segment, as soon as any
// segment fails authentication, including truncation and reordering. Open
// returns the KEK's error class (ErrKeyRevoked, ErrKeyUnavailable,
// ErrIntegrity) when a share cannot be unwrapped.
func (h *Header) Open(ctx context.Context, body io.Reader, kr KeyResolver) (io.Reader, error) {
	dek, err := h.unwrapDataKey(ctx, kr)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	c, err := h.bodyCipher(dek)
	if err != nil {
		return nil, err
	}
	r, err := c.NewDecryptingReader(body, h.bound)
	if err != nil {
		return nil, fmt.Errorf("%w: body header", ErrIntegrity)
	}
	return integrityReader{r}, nil
}

// unwrapDataKey unwraps and combines the shares and verifies the commitment.
func (h *Header) unwrapDataKey(ctx context.Context, kr KeyResolver) ([]byte, error) {
	dek := make([]byte, dataKeyLen)
	for _, s := range h.Slots {
		w, err := kr.Wrapper(ctx, s.KeyURI)
		if err != nil {
			return nil, err
		}
		if w.KeyURI() != s.KeyURI {
			return nil, fmt.Errorf("%w: resolver answered with another key", ErrIntegrity)
		}
		share, err := w.Unwrap(ctx, s.Wrapped, h.Context)
		if err != nil {
			return nil, err
		}
		if len(share) != dataKeyLen {
			clear(share)
			return nil, fmt.Errorf("%w: data key share of %d bytes", ErrIntegrity, len(share))
		}
		subtle.XORBytes(dek, dek, share)
		clear(share)
	}
	want, err := commitment(dek, h.bound)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(want[:], h.commitment[:]) {
		clear(dek)
		return nil, fmt.Errorf("%w: key commitment", ErrIntegrity)
	}
	return dek, nil
}

// bodyCipher returns the streaming AEAD keyed by a key derived from dek.
func (h *Header) bodyCipher(dek []byte) (*tinkstream.AESGCMHKDF, error) {
	bk, err := hkdf.Key(sha256.New, dek, nil, infoBodyKey, 32)
	if err != nil {
		return nil, fmt.Errorf("keys: derive body key: %w", err)
	}
	defer clear(bk)
	c, err := tinkstream.NewAESGCMHKDF(bk, "SHA256", 32, h.SegmentSize, 0)
	if err != nil {
		return nil, fmt.Errorf("keys: body cipher: %w", err)
	}
	return c, nil
}

// commitment returns HMAC-SHA256 under a key derived from dek over the bound
// header: only the one data key that sealed the object reproduces it.
func commitment(dek, bound []byte) ([commitmentLen]byte, error) {
	var out [commitmentLen]byte
	ck, err := hkdf.Key(sha256.New, dek, nil, infoCommitKey, 32)
	if err != nil {
		return out, fmt.Errorf("keys: derive commitment key: %w", err)
	}
	defer clear(ck)
	m := hmac.New(sha256.New, ck)
	m.Write(bound)
	copy(out[:], m.Sum(nil))
	return out, nil
}

// split returns n random shares whose XOR is dek.
func split(dek []byte, n int) ([][]byte, error) {
	shares := make([][]byte, n)
	last := append([]byte(nil), dek...)
	for i := 0; i < n-1; i++ {
		shares[i] = make([]byte, len(dek))
		if _, err := rand.Read(shares[i]); err != nil {
			return nil, fmt.Errorf("keys: random share: %w", err)
		}
		subtle.XORBytes(last, last, shares[i])
	}
	shares[n-1] = last
	return shares, nil
}

// integrityReader turns every body failure into ErrIntegrity, so callers and
// clients learn nothing about which check failed.
type integrityReader struct{ r io.Reader }

func (ir integrityReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("%w: body", ErrIntegrity)
	}
	return n, err
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
