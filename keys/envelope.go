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

// ShareWrapper turns one share of a data key into a key slot. Direct wraps
// with a KEK (SlotKindShare); a KeyCache seals with an intermediate key
// (SlotKindIntermediate).
type ShareWrapper interface {
	WrapShare(ctx context.Context, share []byte, ec EncryptionContext) (Slot, error)
}

// SlotOpener recovers the share held by a key slot. *Keyring opens
// SlotKindShare slots; a KeyCache opens both kinds.
type SlotOpener interface {
	UnwrapShare(ctx context.Context, s Slot, ec EncryptionContext) ([]byte, error)
}

// Direct returns a ShareWrapper that wraps shares with w itself.
func Direct(w Wrapper) ShareWrapper { return direct{w} }

type direct struct{ w Wrapper }

func (d direct) WrapShare(ctx context.Context, share []byte, ec EncryptionContext) (Slot, error) {
	wrapped, err := d.w.Wrap(ctx, share, ec)
	if err != nil {
		return Slot{}, err
	}
	return Slot{Kind: SlotKindShare, KeyURI: d.w.KeyURI(), Wrapped: wrapped}, nil
}

// UnwrapShare opens a SlotKindShare slot with the Wrapper of its key URI. It
// returns an error wrapping ErrIntegrity for any other slot kind.
func (k *Keyring) UnwrapShare(ctx context.Context, s Slot, ec EncryptionContext) ([]byte, error) {
	if s.Kind != SlotKindShare {
		return nil, fmt.Errorf("%w: slot kind %d needs a key cache", ErrIntegrity, s.Kind)
	}
	return unwrapDirect(ctx, k, s, ec)
}

// unwrapDirect unwraps a SlotKindShare slot with the Wrapper kr gives for its
// URI, checking that the Wrapper answers for that very key.
func unwrapDirect(ctx context.Context, kr KeyResolver, s Slot, ec EncryptionContext) ([]byte, error) {
	w, err := kr.Wrapper(ctx, s.KeyURI)
	if err != nil {
		return nil, err
	}
	if w.KeyURI() != s.KeyURI {
		return nil, fmt.Errorf("%w: resolver answered with another key", ErrIntegrity)
	}
	return w.Unwrap(ctx, s.Wrapped, ec)
}

// SealParams says how to seal one artifact.
type SealParams struct {
	// Context binds the data key and the body; it goes to every KEK.
	Context EncryptionContext
	// Metadata is authenticated but not encrypted: never put content in it.
	Metadata map[string]string
	Mode     Mode
	// KEKs wrap one share each of the data key directly; all of them are
	// needed to unwrap it (two for ModeCustomerAndProvider, one otherwise).
	KEKs []Wrapper
	// Wrappers, when set instead of KEKs, make the key slots (e.g. through a
	// KeyCache).
	Wrappers []ShareWrapper
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
	wrappers := p.Wrappers
	if len(wrappers) == 0 {
		for _, k := range p.KEKs {
			wrappers = append(wrappers, Direct(k))
		}
	}
	if len(wrappers) == 0 || len(wrappers) > maxSlots {
		return nil, fmt.Errorf("keys: %d key encryption keys, want 1..%d", len(wrappers), maxSlots)
	}
	bound, err := encodeBound(p.Context, p.Metadata, seg)
	if err != nil {
		return nil, err
	}
	dek := make([]byte, dataKeyLen)
	if _, err := rand.Read(dek); err != nil {
		return nil, fmt.Errorf("keys: random data key: %w", err)
	}
	h := &Header{
		Context: p.Context.Clone(), Metadata: cloneMap(p.Metadata),
		SegmentSize: seg, Mode: p.Mode, bound: bound,
	}
	if err := h.wrapDataKey(ctx, dek, p.Mode, wrappers); err != nil {
		clear(dek)
		return nil, err
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

// wrapDataKey splits dek into one share per wrapper and sets the header's
// mode and slots. It leaves h unchanged on error.
func (h *Header) wrapDataKey(ctx context.Context, dek []byte, mode Mode, wrappers []ShareWrapper) error {
	if mode < ModeProvider || mode > ModeCustomerAndProvider {
		return fmt.Errorf("keys: invalid key mode %d", mode)
	}
	shares, err := split(dek, len(wrappers))
	if err != nil {
		return err
	}
	defer func() {
		for _, s := range shares {
			clear(s)
		}
	}()
	slots := make([]Slot, 0, len(wrappers))
	for i, w := range wrappers {
		s, err := w.WrapShare(ctx, shares[i], h.Context)
		if err != nil {
			return err
		}
		slots = append(slots, s)
	}
	h.Mode, h.Slots = mode, slots
	return nil
}

// Rewrap returns a copy of h whose key section wraps the same data key under
// mode and wrappers: the body and the bound header stay valid, so the object
// is re-keyed by rewriting its header alone. It unwraps the data key through
// o and verifies the key commitment first, returning o's errors.
func (h *Header) Rewrap(ctx context.Context, o SlotOpener, mode Mode, wrappers []ShareWrapper) (*Header, error) {
	if len(wrappers) == 0 || len(wrappers) > maxSlots {
		return nil, fmt.Errorf("keys: %d key encryption keys, want 1..%d", len(wrappers), maxSlots)
	}
	dek, err := h.unwrapDataKey(ctx, o)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	// External shares stay as they are (they live outside the object and
	// are destroyed at purge); the key encryption keys get new shares of
	// what remains.
	var external []Slot
	for _, s := range h.Slots {
		if s.Kind != SlotKindExternal {
			continue
		}
		share, err := o.UnwrapShare(ctx, s, h.Context)
		if err != nil {
			return nil, err
		}
		subtle.XORBytes(dek, dek, share)
		clear(share)
		external = append(external, s)
	}
	if len(wrappers)+len(external) > maxSlots {
		return nil, fmt.Errorf("keys: %d key slots, want at most %d", len(wrappers)+len(external), maxSlots)
	}
	out := *h
	out.Context, out.Metadata = h.Context.Clone(), cloneMap(h.Metadata)
	if err := out.wrapDataKey(ctx, dek, mode, wrappers); err != nil {
		return nil, err
	}
	out.Slots = append(out.Slots, external...)
	return &out, nil
}

// ExternalShareIDs returns the ids of the header's external shares.
func (h *Header) ExternalShareIDs() [][]byte {
	var out [][]byte
	for _, s := range h.Slots {
		if s.Kind == SlotKindExternal {
			out = append(out, s.Wrapped)
		}
	}
	return out
}

// Open unwraps the data key through the KEKs named in the header, checks the
// key commitment, and returns a reader of the verified plaintext of body (the
// bytes that follow the header). The reader returns an error wrapping
// ErrIntegrity, and no plaintext of the failing segment, as soon as any
// segment fails authentication, including truncation and reordering. Open
// returns the KEK's error class (ErrKeyRevoked, ErrKeyUnavailable,
// ErrIntegrity) when a share cannot be unwrapped.
func (h *Header) Open(ctx context.Context, body io.Reader, o SlotOpener) (io.Reader, error) {
	dek, err := h.unwrapDataKey(ctx, o)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	c, err := h.bodyCipher(dek)
	if err != nil {
		return nil, err
	}
	src := &sourceReader{r: body}
	r, err := c.NewDecryptingReader(src, h.bound)
	if err != nil {
		if src.err != nil {
			return nil, src.err
		}
		return nil, fmt.Errorf("%w: body header", ErrIntegrity)
	}
	return integrityReader{r: r, src: src}, nil
}

// unwrapDataKey unwraps and combines the shares and verifies the commitment.
func (h *Header) unwrapDataKey(ctx context.Context, o SlotOpener) ([]byte, error) {
	dek := make([]byte, dataKeyLen)
	for _, s := range h.Slots {
		share, err := o.UnwrapShare(ctx, s, h.Context)
		if err != nil {
			clear(dek)
			return nil, err
		}
		if len(share) != dataKeyLen {
			clear(share)
			clear(dek)
			return nil, fmt.Errorf("%w: data key share of %d bytes", ErrIntegrity, len(share))
		}
		subtle.XORBytes(dek, dek, share)
		clear(share)
	}
	want, err := commitment(dek, h.bound)
	if err != nil {
		clear(dek)
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

// sourceReader remembers the error of the stream under the body, so that a
// storage failure is not mistaken for tampering.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		s.err = err
	}
	return n, err
}

// integrityReader turns every authentication failure of the body into
// ErrIntegrity, so callers and clients learn nothing about which check
// failed; an error of the underlying stream (storage unavailable, request
// cancelled) is returned as itself.
type integrityReader struct {
	r   io.Reader
	src *sourceReader
}

func (ir integrityReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		if ir.src.err != nil {
			return n, ir.src.err
		}
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
