package keys

import "fmt"

// BodySize returns the length of the encrypted body for a plaintext of n
// bytes sealed with segment size seg. The gateway uses it to give stores the
// exact object size before the upload starts.
func BodySize(n int64, seg int) int64 {
	first := int64(seg - tinkHeaderLen - tagLen) // plaintext in the first segment
	rest := int64(seg - tagLen)                  // plaintext in every later segment
	segments := int64(1)
	if n > first {
		segments += (n - first + rest - 1) / rest
	}
	return int64(tinkHeaderLen) + n + segments*int64(tagLen)
}

// PlaintextSize returns the plaintext length of a body of bodyLen bytes sealed
// with this header's segment size. It returns an error wrapping ErrIntegrity
// when no plaintext length gives that body length.
func (h *Header) PlaintextSize(bodyLen int64) (int64, error) {
	seg := int64(h.SegmentSize)
	if bodyLen < int64(tinkHeaderLen+tagLen) {
		return 0, fmt.Errorf("%w: body of %d bytes", ErrIntegrity, bodyLen)
	}
	segments := int64(1)
	if bodyLen > seg {
		segments += (bodyLen - seg + seg - 1) / seg
	}
	n := bodyLen - int64(tinkHeaderLen) - segments*int64(tagLen)
	if n < 0 || BodySize(n, h.SegmentSize) != bodyLen {
		return 0, fmt.Errorf("%w: body of %d bytes", ErrIntegrity, bodyLen)
	}
	return n, nil
}

// ObjectSize returns the whole object's length (header and body) for a
// plaintext of n bytes.
func (h *Header) ObjectSize(n int64) int64 {
	return int64(h.Len()) + BodySize(n, h.SegmentSize)
}
