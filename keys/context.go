package keys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"unicode/utf8"
)

// Names of the encryption context entries that the gateway sets on every
// artifact. Drivers pass the whole context to the key service (AWS KMS
// EncryptionContext, Vault Transit associated_data) so that the customer's own
// audit log names the account and artifact of every key use.
const (
	ContextAccount  = "account"
	ContextArtifact = "artifact"
	ContextType     = "type"
	ContextRegion   = "storage_region"
)

// Limits that keep a hostile header from making the reader allocate without
// bound.
const (
	maxMapEntries = 256
	maxKeyLen     = 255
	maxValueLen   = 4096
)

// EncryptionContext is the set of name/value pairs that a data key and a body
// are bound to. It is not secret; it is authenticated.
type EncryptionContext map[string]string

// Encode returns the canonical encoding of c: entries sorted by name in byte
// order, each as a 2-byte big-endian name length, the name, a 4-byte
// big-endian value length and the value, all preceded by a 2-byte entry
// count. Two different contexts never encode to the same bytes.
func (c EncryptionContext) Encode() []byte {
	return encodeMap(c)
}

// Equal reports whether c and o hold exactly the same entries.
func (c EncryptionContext) Equal(o EncryptionContext) bool {
	if len(c) != len(o) {
		return false
	}
	for k, v := range c {
		if w, ok := o[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Clone returns a copy of c.
func (c EncryptionContext) Clone() EncryptionContext {
	out := make(EncryptionContext, len(c))
	for k, v := range c {
		out[k] = v
	}
	return out
}

// validateMap checks the limits of a context or metadata map before encoding.
func validateMap(m map[string]string) error {
	if len(m) > maxMapEntries {
		return fmt.Errorf("keys: %d entries exceed the limit of %d", len(m), maxMapEntries)
	}
	for k, v := range m {
		if len(k) == 0 || len(k) > maxKeyLen {
			return fmt.Errorf("keys: entry name of %d bytes is out of range 1..%d", len(k), maxKeyLen)
		}
		if len(v) > maxValueLen {
			return fmt.Errorf("keys: value of %q has %d bytes, more than %d", k, len(v), maxValueLen)
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("keys: entry %q is not valid UTF-8", k)
		}
	}
	return nil
}

func encodeMap(m map[string]string) []byte {
	names := make([]string, 0, len(m))
	size := 2
	for k, v := range m {
		names = append(names, k)
		size += 2 + len(k) + 4 + len(v)
	}
	sort.Strings(names)
	out := make([]byte, 0, size)
	out = binary.BigEndian.AppendUint16(out, uint16(len(names)))
	for _, k := range names {
		out = binary.BigEndian.AppendUint16(out, uint16(len(k)))
		out = append(out, k...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(m[k])))
		out = append(out, m[k]...)
	}
	return out
}

var errMapEncoding = errors.New("keys: malformed map encoding")

// decodeMap parses the canonical encoding of encodeMap. It rejects anything
// that encodeMap would not produce: unsorted or repeated names, trailing
// bytes, and entries beyond the limits.
func decodeMap(b []byte) (map[string]string, error) {
	if len(b) < 2 {
		return nil, errMapEncoding
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n > maxMapEntries {
		return nil, errMapEncoding
	}
	m := make(map[string]string, n)
	prev := ""
	for i := 0; i < n; i++ {
		if len(b) < 2 {
			return nil, errMapEncoding
		}
		kl := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		if kl == 0 || kl > maxKeyLen || len(b) < kl+4 {
			return nil, errMapEncoding
		}
		k := string(b[:kl])
		b = b[kl:]
		vl := int(binary.BigEndian.Uint32(b))
		b = b[4:]
		if vl > maxValueLen || len(b) < vl {
			return nil, errMapEncoding
		}
		v := string(b[:vl])
		b = b[vl:]
		if i > 0 && k <= prev {
			return nil, errMapEncoding
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, errMapEncoding
		}
		prev = k
		m[k] = v
	}
	if len(b) != 0 {
		return nil, errMapEncoding
	}
	return m, nil
}
