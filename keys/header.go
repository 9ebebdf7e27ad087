package keys

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// Magic opens every sealgate object.
const Magic = "sealgate"

// FormatVersion is the object format this package writes.
const FormatVersion = 1

// AEADAES256GCMHKDF is the body cipher of format v1: Tink streaming AEAD
// AES-256-GCM with HKDF-SHA256 key derivation.
const AEADAES256GCMHKDF = 1

// Slot kinds.
const (
	// SlotKindShare: one share of the data key, wrapped directly by the
	// slot's key encryption key.
	SlotKindShare = 1
	// SlotKindIntermediate: one share of the data key sealed by an
	// intermediate key, which is itself wrapped by the slot's key encryption
	// key (the S3 Bucket Keys pattern: one KEK call serves many artifacts).
	SlotKindIntermediate = 2
	// SlotKindExternal: one share of the data key kept outside the object,
	// in the gateway's control store, named by the slot's 16-byte id
	// (Wrapped). Destroying that share (at purge) makes every copy of the
	// object unreadable, whatever keys are at hand: crypto-shredding. The
	// slot's KeyURI is ExternalShareURI.
	SlotKindExternal = 3
)

// ExternalShareURI is the key URI of external share slots.
const ExternalShareURI = "sealgate:external-share"

// ExternalShareIDLen is the length of an external share's id.
const ExternalShareIDLen = 16

// IntermediateKeyIDLen is the length of an intermediate key's random id.
const IntermediateKeyIDLen = 16

// Mode says whose keys wrap an artifact's data key; it mirrors the API's
// KeyMode.
type Mode uint8

// Key modes.
const (
	ModeProvider            Mode = 1
	ModeCustomer            Mode = 2
	ModeCustomerAndProvider Mode = 3
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case ModeProvider:
		return "PROVIDER"
	case ModeCustomer:
		return "CUSTOMER"
	case ModeCustomerAndProvider:
		return "CUSTOMER_AND_PROVIDER"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

const (
	prefixLen      = len(Magic) + 1 + 4 // magic, version, bound length
	commitmentLen  = 32
	maxBoundLen    = 256 << 10
	maxSlotsLen    = 64 << 10
	maxSlots       = 8
	maxKeyURILen   = 2048
	maxWrappedLen  = 8 << 10
	dataKeyLen     = 32
	boundFixedTail = 1 + 4 // aead id, segment size
)

// Slot is one wrapped share of the data key.
type Slot struct {
	Kind   uint8
	KeyURI string
	// IKID and WrappedIK name and carry the intermediate key of a
	// SlotKindIntermediate slot; they are empty for SlotKindShare.
	IKID      []byte
	WrappedIK []byte
	// Wrapped is the share: wrapped by the KEK (SlotKindShare) or sealed by
	// the intermediate key (SlotKindIntermediate).
	Wrapped []byte
}

// encodedLen returns the slot's encoded length.
func (s Slot) encodedLen() int {
	n := 1 + 2 + len(s.KeyURI) + 4 + len(s.Wrapped)
	if s.Kind == SlotKindIntermediate {
		n += IntermediateKeyIDLen + 4 + len(s.WrappedIK)
	}
	return n
}

// Header is the parsed header of a sealgate object. The bound part (context,
// metadata, body parameters) is authenticated by the key commitment and by the
// body; the key section (mode and slots) can be replaced (re-wrapped, even
// under another key mode) without touching the body.
type Header struct {
	Context     EncryptionContext
	Metadata    map[string]string
	SegmentSize int
	Mode        Mode
	Slots       []Slot

	bound      []byte // magic, version, bound length and bound fields, as read or written
	commitment [commitmentLen]byte
}

// encodeBound builds the authenticated prefix of the header.
func encodeBound(ec EncryptionContext, meta map[string]string, segSize int) ([]byte, error) {
	if err := validateMap(ec); err != nil {
		return nil, err
	}
	if err := validateMap(meta); err != nil {
		return nil, err
	}
	ctxb, metab := encodeMap(ec), encodeMap(meta)
	n := 4 + len(ctxb) + 4 + len(metab) + boundFixedTail
	if n > maxBoundLen {
		return nil, fmt.Errorf("keys: header of %d bytes exceeds %d", n, maxBoundLen)
	}
	b := make([]byte, 0, prefixLen+n)
	b = append(b, Magic...)
	b = append(b, FormatVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = binary.BigEndian.AppendUint32(b, uint32(len(ctxb)))
	b = append(b, ctxb...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(metab)))
	b = append(b, metab...)
	b = append(b, AEADAES256GCMHKDF)
	b = binary.BigEndian.AppendUint32(b, uint32(segSize))
	return b, nil
}

// encodeSlots returns the key section (mode and slots), without its length
// prefix.
func encodeSlots(mode Mode, slots []Slot) ([]byte, error) {
	if mode < ModeProvider || mode > ModeCustomerAndProvider {
		return nil, fmt.Errorf("keys: invalid key mode %d", mode)
	}
	if len(slots) == 0 || len(slots) > maxSlots {
		return nil, fmt.Errorf("keys: %d key slots, want 1..%d", len(slots), maxSlots)
	}
	b := []byte{byte(mode), byte(len(slots))}
	for _, s := range slots {
		if len(s.KeyURI) == 0 || len(s.KeyURI) > maxKeyURILen || len(s.Wrapped) == 0 || len(s.Wrapped) > maxWrappedLen {
			return nil, fmt.Errorf("keys: key slot for %q out of limits", s.KeyURI)
		}
		b = append(b, s.Kind)
		b = binary.BigEndian.AppendUint16(b, uint16(len(s.KeyURI)))
		b = append(b, s.KeyURI...)
		switch s.Kind {
		case SlotKindShare:
		case SlotKindExternal:
			if len(s.Wrapped) != ExternalShareIDLen || s.KeyURI != ExternalShareURI {
				return nil, fmt.Errorf("keys: external share slot out of limits")
			}
		case SlotKindIntermediate:
			if len(s.IKID) != IntermediateKeyIDLen || len(s.WrappedIK) == 0 || len(s.WrappedIK) > maxWrappedLen {
				return nil, fmt.Errorf("keys: intermediate key slot for %q out of limits", s.KeyURI)
			}
			b = append(b, s.IKID...)
			b = binary.BigEndian.AppendUint32(b, uint32(len(s.WrappedIK)))
			b = append(b, s.WrappedIK...)
		default:
			return nil, fmt.Errorf("keys: unknown slot kind %d", s.Kind)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(s.Wrapped)))
		b = append(b, s.Wrapped...)
	}
	if len(b) > maxSlotsLen {
		return nil, fmt.Errorf("keys: key slots of %d bytes exceed %d", len(b), maxSlotsLen)
	}
	return b, nil
}

// Encode returns the header's bytes as they precede the body in the object.
func (h *Header) Encode() ([]byte, error) {
	slots, err := encodeSlots(h.Mode, h.Slots)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(h.bound)+commitmentLen+4+len(slots))
	out = append(out, h.bound...)
	out = append(out, h.commitment[:]...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(slots)))
	return append(out, slots...), nil
}

// Len returns the encoded length of the header in bytes.
func (h *Header) Len() int {
	n := len(h.bound) + commitmentLen + 4 + 2
	for _, s := range h.Slots {
		n += s.encodedLen()
	}
	return n
}

// KeyURIs returns the URIs of the key encryption keys of the header's
// slots, in slot order; external shares are not keys and are left out.
func (h *Header) KeyURIs() []string {
	out := make([]string, 0, len(h.Slots))
	for _, s := range h.Slots {
		if s.Kind != SlotKindExternal {
			out = append(out, s.KeyURI)
		}
	}
	return out
}

// ReadHeader reads exactly one header from r and parses it. It returns an
// error wrapping ErrFormat when r does not start with a sealgate header of a
// known version, or ErrIntegrity when the header is malformed or truncated.
// Nothing is authenticated yet: Open checks the key commitment.
func ReadHeader(r io.Reader) (*Header, error) {
	pre := make([]byte, prefixLen)
	if _, err := io.ReadFull(r, pre); err != nil {
		return nil, fmt.Errorf("%w: short header", ErrFormat)
	}
	if !bytes.Equal(pre[:len(Magic)], []byte(Magic)) || pre[len(Magic)] != FormatVersion {
		return nil, ErrFormat
	}
	n := binary.BigEndian.Uint32(pre[len(Magic)+1:])
	if n > maxBoundLen || n < 4+2+4+2+boundFixedTail {
		return nil, fmt.Errorf("%w: bound length %d", ErrIntegrity, n)
	}
	bound := make([]byte, prefixLen+int(n))
	copy(bound, pre)
	if _, err := io.ReadFull(r, bound[prefixLen:]); err != nil {
		return nil, fmt.Errorf("%w: truncated header", ErrIntegrity)
	}
	h := &Header{bound: bound}
	if err := h.parseBound(bound[prefixLen:]); err != nil {
		return nil, err
	}
	tail := make([]byte, commitmentLen+4)
	if _, err := io.ReadFull(r, tail); err != nil {
		return nil, fmt.Errorf("%w: truncated header", ErrIntegrity)
	}
	copy(h.commitment[:], tail)
	sl := binary.BigEndian.Uint32(tail[commitmentLen:])
	if sl == 0 || sl > maxSlotsLen {
		return nil, fmt.Errorf("%w: slot length %d", ErrIntegrity, sl)
	}
	slots := make([]byte, sl)
	if _, err := io.ReadFull(r, slots); err != nil {
		return nil, fmt.Errorf("%w: truncated key slots", ErrIntegrity)
	}
	mode, parsed, err := parseSlots(slots)
	if err != nil {
		return nil, err
	}
	h.Mode, h.Slots = mode, parsed
	return h, nil
}

func (h *Header) parseBound(b []byte) error {
	bad := func(what string) error { return fmt.Errorf("%w: malformed %s", ErrIntegrity, what) }
	field := func() ([]byte, bool) {
		if len(b) < 4 {
			return nil, false
		}
		l := int(binary.BigEndian.Uint32(b))
		if len(b)-4 < l {
			return nil, false
		}
		f := b[4 : 4+l]
		b = b[4+l:]
		return f, true
	}
	ctxb, ok := field()
	if !ok {
		return bad("context")
	}
	ec, err := decodeMap(ctxb)
	if err != nil {
		return bad("context")
	}
	metab, ok := field()
	if !ok {
		return bad("metadata")
	}
	meta, err := decodeMap(metab)
	if err != nil {
		return bad("metadata")
	}
	if len(b) != boundFixedTail || b[0] != AEADAES256GCMHKDF {
		return bad("body parameters")
	}
	seg := int(binary.BigEndian.Uint32(b[1:]))
	if seg < MinSegmentSize || seg > MaxSegmentSize {
		return bad("segment size")
	}
	h.Context, h.Metadata, h.SegmentSize = ec, meta, seg
	return nil
}

// parseSlots parses the key section written by encodeSlots.
func parseSlots(b []byte) (Mode, []Slot, error) {
	bad := fmt.Errorf("%w: malformed key slots", ErrIntegrity)
	if len(b) < 2 {
		return 0, nil, bad
	}
	mode, n := Mode(b[0]), int(b[1])
	b = b[2:]
	if mode < ModeProvider || mode > ModeCustomerAndProvider || n == 0 || n > maxSlots {
		return 0, nil, bad
	}
	// take returns the next l bytes, or false when fewer remain.
	take := func(l int) ([]byte, bool) {
		if l < 0 || len(b) < l {
			return nil, false
		}
		out := bytes.Clone(b[:l])
		b = b[l:]
		return out, true
	}
	u32 := func() int {
		v, ok := take(4)
		if !ok {
			return -1
		}
		return int(binary.BigEndian.Uint32(v))
	}
	slots := make([]Slot, 0, n)
	for i := 0; i < n; i++ {
		head, ok := take(3)
		if !ok {
			return 0, nil, bad
		}
		s := Slot{Kind: head[0]}
		ul := int(binary.BigEndian.Uint16(head[1:]))
		uri, ok := take(ul)
		if !ok || ul == 0 || ul > maxKeyURILen {
			return 0, nil, bad
		}
		s.KeyURI = string(uri)
		switch s.Kind {
		case SlotKindShare, SlotKindExternal:
		case SlotKindIntermediate:
			if s.IKID, ok = take(IntermediateKeyIDLen); !ok {
				return 0, nil, bad
			}
			wl := u32()
			if wl <= 0 || wl > maxWrappedLen {
				return 0, nil, bad
			}
			if s.WrappedIK, ok = take(wl); !ok {
				return 0, nil, bad
			}
		default:
			return 0, nil, bad
		}
		wl := u32()
		if wl <= 0 || wl > maxWrappedLen {
			return 0, nil, bad
		}
		if s.Wrapped, ok = take(wl); !ok {
			return 0, nil, bad
		}
		slots = append(slots, s)
	}
	if len(b) != 0 {
		return 0, nil, bad
	}
	return mode, slots, nil
}
